using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Isthmus.Core.Addressing;

/// <summary>
/// An IPv4 network: a host-order network address and a prefix length 0..32, with no host bits set
/// (<c>10.1.0.0/16</c>, never <c>10.1.2.3/16</c>).
/// </summary>
public readonly record struct IPv4Cidr(uint Network, int PrefixLength)
{
    /// <summary>The network address (host order); its host bits are zero.</summary>
    public uint Network { get; } = CheckNetwork(Network, PrefixLength);

    /// <summary>The prefix length, 0..32.</summary>
    public int PrefixLength { get; } = PrefixLength;

    /// <summary>The network mask, host order (<c>/24</c> is <c>0xFFFFFF00</c>).</summary>
    public uint Mask => MaskOf(PrefixLength);

    /// <summary>The host part mask, the complement of <see cref="Mask"/>.</summary>
    public uint HostMask => ~Mask;

    /// <summary>The first address of the network (the network address itself).</summary>
    public uint First => Network;

    /// <summary>The last address of the network (the broadcast address for prefixes up to 30).</summary>
    public uint Last => Network | HostMask;

    /// <summary>How many addresses the network spans, 2^(32-prefix); <c>/0</c> gives 2^32.</summary>
    public ulong AddressCount => 1UL << (32 - PrefixLength);

    /// <summary>Whether <paramref name="address"/> (host order) is inside this network.</summary>
    public bool Contains(uint address) => (address & Mask) == Network;

    /// <summary>Whether all of <paramref name="other"/> is inside this network.</summary>
    public bool Contains(IPv4Cidr other) => other.PrefixLength >= PrefixLength && Contains(other.Network);

    /// <summary>Whether the two networks share any address (for CIDR blocks: one contains the other).</summary>
    public bool Overlaps(IPv4Cidr other) => Contains(other.Network) || other.Contains(Network);

    /// <summary>Formats as <c>a.b.c.d/n</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{IPv4.Format(Network)}/{PrefixLength}");

    /// <summary>The mask for a prefix length, host order.</summary>
    public static uint MaskOf(int prefixLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, 32);
        // A shift by 32 is a shift by 0 in C#, so /0 needs its own case.
        return prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength);
    }

    /// <summary>Parses <c>a.b.c.d/n</c>.</summary>
    /// <exception cref="UserException">The text is not a network in that form; the message says why.</exception>
    public static IPv4Cidr Parse(string text) =>
        TryParse(text, out var cidr, out var error) ? cidr : throw new UserException(error);

    /// <summary>Parses <c>a.b.c.d/n</c>.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out IPv4Cidr cidr) => TryParse(text, out cidr, out _);

    /// <summary>Parses <c>a.b.c.d/n</c>; on failure <paramref name="error"/> is a one-line reason.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out IPv4Cidr cidr, out string error)
    {
        cidr = default;
        if (text is null)
        {
            error = "missing network (expected a.b.c.d/n, like 100.64.0.0/16)";
            return false;
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            error = $"'{text}' is not a network: the prefix length is missing (expected a.b.c.d/n, like 100.64.0.0/16)";
            return false;
        }

        if (!IPv4.TryParse(text[..slash], out var address))
        {
            error = $"'{text}' is not a network: '{text[..slash]}' is not an IPv4 address";
            return false;
        }

        var prefixText = text[(slash + 1)..];
        if (prefixText.Length is 0 or > 2 || !prefixText.All(char.IsAsciiDigit) || (prefixText.Length > 1 && prefixText[0] == '0')
            || int.Parse(prefixText, CultureInfo.InvariantCulture) > 32)
        {
            error = $"'{text}' is not a network: the prefix length must be a number 0..32";
            return false;
        }

        var prefix = int.Parse(prefixText, CultureInfo.InvariantCulture);
        var mask = MaskOf(prefix);
        if ((address & ~mask) != 0)
        {
            error = $"'{text}' is not a network address: host bits are set (did you mean {IPv4.Format(address & mask)}/{prefix}?)";
            return false;
        }

        cidr = new IPv4Cidr(address, prefix);
        error = "";
        return true;
    }

    private static uint CheckNetwork(uint network, int prefixLength)
    {
        var mask = MaskOf(prefixLength);
        if ((network & ~mask) != 0)
        {
            throw new ArgumentException(
                $"{IPv4.Format(network)}/{prefixLength} has host bits set", nameof(network));
        }

        return network;
    }
}
