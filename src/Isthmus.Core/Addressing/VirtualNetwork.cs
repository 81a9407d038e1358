namespace Isthmus.Core.Addressing;

/// <summary>
/// The cluster's address plan: the virtual network (every VIP is in it) and its loopback image in 127/8.
/// <c>image = imageBase | (vip &amp; hostmask)</c> and back; the translation is a pure function so the shim,
/// the agent and the router agree on it with no shared table.
/// </summary>
public sealed class VirtualNetwork
{
    /// <summary>The network used when the cluster file does not name one: <c>100.64.0.0/16</c> (RFC 6598 space).</summary>
    public static readonly IPv4Cidr DefaultNetwork = new(0x64400000, 16);

    /// <summary>The image base used when the cluster file does not name one: <c>127.100.0.0</c>.</summary>
    public const uint DefaultImageBase = 0x7F640000;

    /// <summary>The shortest allowed cluster network prefix.</summary>
    public const int MinPrefixLength = 16;

    /// <summary>The longest allowed cluster network prefix.</summary>
    public const int MaxPrefixLength = 28;

    /// <summary>Creates the plan.</summary>
    /// <exception cref="UserException">The network or image base is not allowed; see <see cref="IsValid"/>.</exception>
    public VirtualNetwork(IPv4Cidr network, uint imageBase = DefaultImageBase)
    {
        if (!IsValid(network, imageBase, out var reason))
        {
            throw new UserException(reason);
        }

        Network = network;
        ImageBase = imageBase;
    }

    /// <summary>The cluster network; every VIP is inside it.</summary>
    public IPv4Cidr Network { get; }

    /// <summary>The loopback image base (host order), in 127/8 with the host bits of <see cref="Network"/> zero.</summary>
    public uint ImageBase { get; }

    /// <summary>The loopback range that images occupy: the image base with the network's prefix length.</summary>
    public IPv4Cidr ImageRange => new(ImageBase, Network.PrefixLength);

    /// <summary>Whether <paramref name="address"/> is a VIP (inside the cluster network).</summary>
    public bool IsVirtual(uint address) => Network.Contains(address);

    /// <summary>Whether <paramref name="address"/> is the loopback image of some VIP.</summary>
    public bool IsImage(uint address) => ImageRange.Contains(address);

    /// <summary>The loopback image of a VIP.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vip"/> is not in the cluster network.</exception>
    public uint ToImage(uint vip)
    {
        if (!IsVirtual(vip))
        {
            throw new ArgumentOutOfRangeException(nameof(vip), $"{IPv4.Format(vip)} is not in {Network}");
        }

        return ImageBase | (vip & Network.HostMask);
    }

    /// <summary>The VIP whose loopback image is <paramref name="image"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="image"/> is not in <see cref="ImageRange"/>.</exception>
    public uint FromImage(uint image)
    {
        if (!IsImage(image))
        {
            throw new ArgumentOutOfRangeException(nameof(image), $"{IPv4.Format(image)} is not in {ImageRange}");
        }

        return Network.Network | (image & Network.HostMask);
    }

    /// <summary>
    /// Checks a network and image base: the prefix must be <see cref="MinPrefixLength"/>..<see cref="MaxPrefixLength"/>,
    /// the image base in 127/8 with the network's host bits zero, and the image range must not hold 127.0.0.1.
    /// </summary>
    public static bool IsValid(IPv4Cidr network, uint imageBase, out string reason)
    {
        if (network.PrefixLength is < MinPrefixLength or > MaxPrefixLength)
        {
            reason = $"cluster network {network}: the prefix length must be {MinPrefixLength}..{MaxPrefixLength} "
                + (network.PrefixLength < MinPrefixLength
                    ? "(the loopback image of a larger network would not fit in 127/8 beside 127.0.0.1)"
                    : "(a smaller network leaves no room for sites with a router and nodes each)");
            return false;
        }

        var image = new IPv4Cidr(0x7F000000, 8);
        if (!image.Contains(imageBase))
        {
            reason = $"image base {IPv4.Format(imageBase)} is not in 127.0.0.0/8";
            return false;
        }

        if ((imageBase & network.HostMask) != 0)
        {
            reason = $"image base {IPv4.Format(imageBase)} has bits set in the host part of {network} "
                + $"(did you mean {IPv4.Format(imageBase & network.Mask)}?)";
            return false;
        }

        // 127.0.0.1 is where agents listen and where programs that bound the wildcard appear; if it were an
        // image it would be mistaken for a VIP.
        if (new IPv4Cidr(imageBase, network.PrefixLength).Contains(0x7F000001))
        {
            reason = $"image range {IPv4.Format(imageBase)}/{network.PrefixLength} contains 127.0.0.1; choose another base, "
                + $"like {IPv4.Format(DefaultImageBase)}";
            return false;
        }

        reason = "";
        return true;
    }
}
