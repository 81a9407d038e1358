using System.Globalization;
using Isthmus.Core.Relay.Resumable;

namespace Isthmus.Core.Relay.Emulation;

/// <summary>
/// What the WAN emulator does to a router's WAN legs and peer links, from
/// <c>"delay=5ms,jitter=1ms,rate=1Gbit,loss=0.1%,outage=15s@60s/120s"</c> (every key optional, each at most once).
/// </summary>
/// <param name="Delay">Added one-way delay of everything this router sends on a WAN connection.</param>
/// <param name="Jitter">Each send's delay varies uniformly in ±jitter (never reordering bytes); at most <paramref name="Delay"/>.</param>
/// <param name="RateBitsPerSecond">Shared rate of all this router's WAN sends (0: unlimited).</param>
/// <param name="Loss">Fraction (0..1) of datagram frames dropped; TCP leg bytes are never dropped.</param>
/// <param name="Outage">Scheduled outages, or null.</param>
public sealed record WanEmulationSpec(TimeSpan Delay, TimeSpan Jitter, long RateBitsPerSecond, double Loss, WanOutageSchedule? Outage)
{
    public const string Syntax = "delay=5ms,jitter=1ms,rate=1Gbit,loss=0.1%,outage=15s@60s[/EVERY]";

    private static readonly string[] Keys = ["delay", "jitter", "rate", "loss", "outage"];

    public static WanEmulationSpec None { get; } = new(TimeSpan.Zero, TimeSpan.Zero, 0, 0, null);

    /// <summary>Whether this emulates nothing (no wrapper is needed).</summary>
    public bool IsNone => this == None;

    /// <summary>Whether sent bytes are queued (delay, jitter or rate); otherwise they go straight to the socket.</summary>
    public bool ShapesBytes => Delay > TimeSpan.Zero || RateBitsPerSecond > 0;

    /// <summary>Parses a spec; a <see cref="FormatException"/> names the bad part and says what was expected.</summary>
    public static WanEmulationSpec Parse(string text) =>
        TryParse(text, out var spec, out var error) ? spec : throw new FormatException(error);

    public static bool TryParse(string text, out WanEmulationSpec spec, out string error)
    {
        ArgumentNullException.ThrowIfNull(text);
        spec = None;
        error = "";
        var trimmed = text.Trim();
        if (trimmed.Length == 0 || trimmed is "none" or "off")
        {
            return true;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        TimeSpan delay = TimeSpan.Zero, jitter = TimeSpan.Zero;
        long rate = 0;
        double loss = 0;
        WanOutageSchedule? outage = null;
        foreach (var rawPart in trimmed.Split(','))
        {
            var part = rawPart.Trim();
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                error = $"'{part}' is not KEY=VALUE (like {Syntax})";
                return false;
            }

            var key = part[..eq].Trim().ToLowerInvariant();
            var value = part[(eq + 1)..].Trim();
            if (!Keys.Contains(key))
            {
                error = $"unknown key '{key}' (the keys are {string.Join(", ", Keys)})";
                return false;
            }

            if (!seen.Add(key))
            {
                error = $"'{key}' is given twice";
                return false;
            }

            var ok = key switch
            {
                "delay" => TryDuration(value, out delay),
                "jitter" => TryDuration(value, out jitter),
                "rate" => TryRate(value, out rate),
                "loss" => TryLoss(value, out loss),
                _ => TryOutage(value, out outage),
            };
            if (!ok)
            {
                error = $"{key}={value}: " + key switch
                {
                    "delay" or "jitter" => "not a duration (like 2.5ms, 250us, 1s)",
                    "rate" => "not a rate above zero (like 100Mbit, 1Gbit, 500kbit)",
                    "loss" => "not a percentage from 0% to 100% (like 0.1%)",
                    _ => "not DURATION@START[/EVERY] with DURATION above zero and EVERY longer than DURATION (like 15s@60s or 5s@30s/120s)",
                };
                return false;
            }
        }

        if (jitter > delay)
        {
            error = $"jitter={FormatDuration(jitter)} is more than delay={FormatDuration(delay)} (the delay would go below zero)";
            return false;
        }

        spec = new WanEmulationSpec(delay, jitter, rate, loss, outage);
        return true;
    }

    public override string ToString()
    {
        if (IsNone)
        {
            return "none";
        }

        var parts = new List<string>();
        if (Delay > TimeSpan.Zero)
        {
            parts.Add("delay=" + FormatDuration(Delay));
        }

        if (Jitter > TimeSpan.Zero)
        {
            parts.Add("jitter=" + FormatDuration(Jitter));
        }

        if (RateBitsPerSecond > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"rate={RateBitsPerSecond}bit"));
        }

        if (Loss > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"loss={Loss * 100:0.####}%"));
        }

        if (Outage is not null)
        {
            parts.Add("outage=" + Outage);
        }

        return string.Join(',', parts);
    }

    internal static string FormatDuration(TimeSpan value) => string.Create(CultureInfo.InvariantCulture, $"{value.TotalMilliseconds:0.###}ms");

    private static bool TryDuration(string text, out TimeSpan value) =>
        QuantityText.TryParseDuration(text, out value) && text.Trim().Any(char.IsAsciiLetter);

    private static bool TryRate(string text, out long bitsPerSecond)
    {
        bitsPerSecond = 0;
        var t = text.Trim();
        var i = 0;
        while (i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.'))
        {
            i++;
        }

        if (!double.TryParse(t[..i], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            return false;
        }

        double? factor = t[i..].Trim().ToLowerInvariant() switch
        {
            "bit" or "bps" or "bit/s" => 1,
            "kbit" or "kbps" or "kbit/s" => 1e3,
            "mbit" or "mbps" or "mbit/s" => 1e6,
            "gbit" or "gbps" or "gbit/s" => 1e9,
            _ => null,
        };
        if (factor is null || n * factor > 1e13 || n * factor < 1)
        {
            return false;
        }

        bitsPerSecond = (long)(n * factor.Value);
        return true;
    }

    private static bool TryLoss(string text, out double fraction)
    {
        fraction = 0;
        var t = text.Trim();
        return t.EndsWith('%')
            && double.TryParse(t[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var percent)
            && percent is >= 0 and <= 100
            && (fraction = percent / 100) >= 0;
    }

    private static bool TryOutage(string text, out WanOutageSchedule? outage)
    {
        outage = null;
        var at = text.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0)
        {
            return false;
        }

        var rest = text[(at + 1)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var startText = slash < 0 ? rest : rest[..slash];
        TimeSpan? every = null;
        if (!TryDuration(text[..at], out var duration) || duration <= TimeSpan.Zero || !TryDuration(startText, out var start))
        {
            return false;
        }

        if (slash >= 0)
        {
            if (!TryDuration(rest[(slash + 1)..], out var e) || e <= duration)
            {
                return false;
            }

            every = e;
        }

        outage = new WanOutageSchedule(duration, start, every);
        return true;
    }
}
