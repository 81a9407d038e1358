using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Isthmus.Core.Addressing;

/// <summary>
/// IPv4 addresses as host-order <see cref="uint"/> values (<c>10.0.0.1</c> is <c>0x0A000001</c>), which makes
/// masks, ranges and the loopback image plain integer arithmetic.
/// </summary>
public static class IPv4
{
    /// <summary>Converts an IPv4 (or IPv4-mapped IPv6) address to its host-order value.</summary>
    /// <exception cref="ArgumentException">The address is IPv6 and not IPv4-mapped.</exception>
    public static uint ToUInt32(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        }

        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return (uint)bytes[0] << 24 | (uint)bytes[1] << 16 | (uint)bytes[2] << 8 | bytes[3];
    }

    /// <summary>Converts a host-order value to an <see cref="IPAddress"/>.</summary>
    public static IPAddress ToIPAddress(uint address) =>
        new([(byte)(address >> 24), (byte)(address >> 16), (byte)(address >> 8), (byte)address]);

    /// <summary>Formats a host-order value as dotted decimal, <c>a.b.c.d</c>.</summary>
    public static string Format(uint address) => string.Create(CultureInfo.InvariantCulture,
        $"{address >> 24}.{(address >> 16) & 0xFF}.{(address >> 8) & 0xFF}.{address & 0xFF}");

    /// <summary>Parses strict dotted decimal (four parts, each 0..255, no leading zeros).</summary>
    /// <exception cref="UserException">The text is not such an address.</exception>
    public static uint Parse(string text) =>
        TryParse(text, out var address)
            ? address
            : throw new UserException($"'{text}' is not an IPv4 address (expected four numbers 0..255, like 10.1.2.3)");

    /// <summary>
    /// Parses strict dotted decimal. Unlike <see cref="IPAddress.TryParse(string, out IPAddress)"/> it refuses
    /// the historical short, octal and hex forms ("10.1", "010.0.0.1"), which are almost always typos in a
    /// configuration file.
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out uint address)
    {
        address = 0;
        if (text is null)
        {
            return false;
        }

        var span = text.AsSpan();
        for (var part = 0; part < 4; part++)
        {
            if (part > 0)
            {
                if (span.Length == 0 || span[0] != '.')
                {
                    return false;
                }

                span = span[1..];
            }

            var digits = 0;
            var value = 0;
            while (digits < span.Length && char.IsAsciiDigit(span[digits]))
            {
                value = value * 10 + (span[digits] - '0');
                digits++;
                if (digits > 3)
                {
                    return false;
                }
            }

            if (digits == 0 || value > 255 || (digits > 1 && span[0] == '0'))
            {
                return false;
            }

            address = address << 8 | (uint)value;
            span = span[digits..];
        }

        return span.Length == 0;
    }
}
