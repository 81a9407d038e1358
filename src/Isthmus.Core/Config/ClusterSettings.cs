using Isthmus.Core.Addressing;

namespace Isthmus.Core.Config;

/// <summary>The <c>[cluster]</c> table of the cluster file.</summary>
/// <param name="Name">The cluster name, a DNS label; the last part of every router certificate name.</param>
/// <param name="Id">A random 16-hex-digit identity, so that two clusters with the same name are not confused.</param>
/// <param name="Network">The cluster network; every site subnet and VIP is inside it.</param>
/// <param name="ImageBase">The loopback image base in 127/8 (host order).</param>
/// <param name="WanEncryption">Whether router↔router legs are TLS 1.3 (true) or cleartext with an HMAC header (false).</param>
/// <param name="NodeHostname">Whether interposed programs see their node's name as gethostname() and uname().nodename.</param>
/// <param name="WanEmulation">The WAN emulator of every router (<c>wan_emulation</c>), unless a site or <c>--wan-emulation</c> says otherwise; null: none.</param>
/// <param name="DirectLan">Whether two nodes of one site connect TCP streams kernel to kernel over their LAN (the router grants each one) instead of through agents and router.</param>
public sealed record ClusterSettings(string Name, string Id, IPv4Cidr Network, uint ImageBase, bool WanEncryption, bool NodeHostname = false,
    Relay.Emulation.WanEmulationSpec? WanEmulation = null, bool DirectLan = true);
