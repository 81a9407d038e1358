using Isthmus.Core.Addressing;

namespace Isthmus.Core.Config;

/// <summary>One <c>[sites.NAME]</c> table of the cluster file: a site, its subnet and its router's addresses.</summary>
/// <param name="Name">The site name, a DNS label.</param>
/// <param name="Subnet">The site's part of the cluster network; its <c>.1</c> is the router, nodes get <c>.2</c> up.</param>
/// <param name="Wan">Where the other sites' routers reach this site's router.</param>
/// <param name="Lan">Where this site's node agents reach its router.</param>
/// <param name="WanEmulation">This site's router's WAN emulator (<c>wan_emulation</c>), over the cluster's; null: the cluster's.</param>
public sealed record SiteSettings(string Name, IPv4Cidr Subnet, HostPort Wan, HostPort Lan, Relay.Emulation.WanEmulationSpec? WanEmulation = null)
{
    /// <summary>The router's VIP: the subnet's first host address (<c>.1</c>).</summary>
    public uint RouterAddress => Subnet.Network + 1;

    /// <summary>The first VIP given to a node (<c>.2</c>).</summary>
    public uint FirstNodeAddress => Subnet.Network + 2;

    /// <summary>The last VIP given to a node (the one before the subnet's broadcast address).</summary>
    public uint LastNodeAddress => Subnet.Last - 1;
}
