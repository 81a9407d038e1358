using System.Globalization;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>Durations (<c>250ms</c>, <c>5s</c>, <c>10m</c>, <c>1h</c>) and sizes (<c>4096</c>, <c>64KiB</c>, <c>8MiB</c>, <c>1GiB</c>) in flags.</summary>
public static class QuantityText
{
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        var (number, unit) = Split(text);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0 || double.IsInfinity(n))
        {
            return false;
        }

        double? ms = unit switch
        {
            "us" => n / 1000,
            "ms" => n,
            "s" => n * 1000,
            "m" or "min" => n * 60_000,
            "h" => n * 3_600_000,
            _ => null,
        };
        if (ms is null || ms > TimeSpan.MaxValue.TotalMilliseconds / 2)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(ms.Value);
        return true;
    }

    public static bool TryParseSize(string text, out long value)
    {
        value = 0;
        var (number, unit) = Split(text);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0)
        {
            return false;
        }

        double? factor = unit.ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1024,
            "M" or "MB" or "MIB" => 1024 * 1024,
            "G" or "GB" or "GIB" => 1024.0 * 1024 * 1024,
            _ => null,
        };
        if (factor is null || n * factor > long.MaxValue / 2)
        {
            return false;
        }

        value = (long)(n * factor.Value);
        return true;
    }

    private static (string Number, string Unit) Split(string text)
    {
        var t = text.Trim();
        var i = 0;
        while (i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.'))
        {
            i++;
        }

        return (t[..i], t[i..].Trim());
    }
}
