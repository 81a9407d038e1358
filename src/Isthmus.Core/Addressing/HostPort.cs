using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Isthmus.Core.Addressing;

/// <summary>
/// A host and a TCP port as written in the cluster file and on the command line: <c>host:port</c>, or
/// <c>[v6]:port</c> for an IPv6 literal. The host is an IPv4 literal, a bracketed IPv6 literal or a DNS name.
/// </summary>
public readonly record struct HostPort(string Host, int Port)
{
    /// <summary>The host: a DNS name, an IPv4 literal, or an IPv6 literal without brackets.</summary>
    public string Host { get; } = Host ?? throw new ArgumentNullException(nameof(Host));

    /// <summary>The TCP port, 1..65535.</summary>
    public int Port { get; } = Port is >= 1 and <= 65535
        ? Port
        : throw new ArgumentOutOfRangeException(nameof(Port), Port, "port must be 1..65535");

    /// <summary>Formats as <c>host:port</c>, bracketing an IPv6 literal.</summary>
    public override string ToString() => Host.Contains(':', StringComparison.Ordinal)
        ? string.Create(CultureInfo.InvariantCulture, $"[{Host}]:{Port}")
        : string.Create(CultureInfo.InvariantCulture, $"{Host}:{Port}");

    /// <summary>
    /// The endpoint for a literal address. Names are not resolved yet (a resolver that can block has no
    /// place in the relay path), so a name is a <see cref="UserException"/>.
    /// </summary>
    public IPEndPoint ToIPEndPoint()
    {
        if (IPv4.TryParse(Host, out var v4))
        {
            return new IPEndPoint(IPv4.ToIPAddress(v4), Port);
        }

        if (Host.Contains(':', StringComparison.Ordinal) && IPAddress.TryParse(Host, out var v6)
            && v6.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return new IPEndPoint(v6, Port);
        }

        throw new UserException(
            $"'{this}': '{Host}' is a name, and names are not resolved yet; give an IP address instead");
    }

    /// <summary>Parses <c>host:port</c> or <c>[v6]:port</c>.</summary>
    /// <exception cref="UserException">The text is not in that form; the message says why.</exception>
    public static HostPort Parse(string text) =>
        TryParse(text, out var result, out var error) ? result : throw new UserException(error);

    /// <summary>Parses <c>host:port</c> or <c>[v6]:port</c>.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out HostPort result) => TryParse(text, out result, out _);

    /// <summary>Parses <c>host:port</c> or <c>[v6]:port</c>; on failure <paramref name="error"/> is a one-line reason.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out HostPort result, out string error)
    {
        result = default;
        if (string.IsNullOrEmpty(text))
        {
            error = "missing address (expected HOST:PORT, like 192.0.2.10:7000)";
            return false;
        }

        string host;
        string portText;
        if (text[0] == '[')
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                error = $"'{text}' is not HOST:PORT (an IPv6 address is written [addr]:port)";
                return false;
            }

            host = text[1..close];
            portText = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{text}': '{host}' is not an IPv6 address";
                return false;
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon < 0)
            {
                error = $"'{text}' has no port (expected HOST:PORT, like 192.0.2.10:7000)";
                return false;
            }

            host = text[..colon];
            portText = text[(colon + 1)..];
            if (host.Contains(':', StringComparison.Ordinal))
            {
                error = $"'{text}' is ambiguous: write an IPv6 address in brackets, [addr]:port";
                return false;
            }

            if (!IsHostName(host))
            {
                error = $"'{text}': '{host}' is not a host name or IPv4 address";
                return false;
            }
        }

        if (portText.Length is 0 or > 5 || !portText.All(char.IsAsciiDigit)
            || int.Parse(portText, CultureInfo.InvariantCulture) is < 1 or > 65535)
        {
            error = $"'{text}': the port must be a number 1..65535";
            return false;
        }

        result = new HostPort(host, int.Parse(portText, CultureInfo.InvariantCulture));
        error = "";
        return true;
    }

    // Letters, digits, '-', '_' and dots, no empty labels. An IPv4 literal passes as a name too, but an
    // almost-literal like 10.0.0.300 is refused so that a typo does not become a DNS lookup later.
    private static bool IsHostName(string host)
    {
        if (host.Length is 0 or > 253)
        {
            return false;
        }

        foreach (var label in host.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-'
                || !label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }

        var lastLabel = host[(host.LastIndexOf('.') + 1)..];
        return !lastLabel.All(char.IsAsciiDigit) || IPv4.TryParse(host, out _);
    }
}
