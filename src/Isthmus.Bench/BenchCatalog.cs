using Isthmus.Bench.Cases;
using Isthmus.Bench.Tools;

namespace Isthmus.Bench;

/// <summary>Every case and tool the bench knows, in the order they run within a round.</summary>
public static class BenchCatalog
{
    /// <summary>The cluster network and loopback image base of the cleartext cluster (the TLS one uses the defaults).</summary>
    private const uint CleartextImageBase = (127u << 24) | (101u << 16);

    /// <summary>The loopback image base of the cluster without trunks (a TLS connection per stream leg).</summary>
    private const uint LegsImageBase = (127u << 24) | (102u << 16);

    public static IReadOnlyList<string> CaseNames { get; } =
    [
        NativeCase.GatewayToGateway, NativeCase.FlatLan, IsthmusCase.IntraSite, IsthmusCase.InterSite, IsthmusCase.InterSiteCleartext,
        IsthmusCase.InterSiteLegs, "socat", "socat-big", "ssh", "ssh-aes", "openvpn", "openvpn-none", "wireguard-go", "nebula",
    ];

    public static IReadOnlyList<string> ToolNames { get; } = [Iperf3Tool.ToolName, NetPipeTool.ToolName, MemcachedTool.ToolName, ConnectTool.ToolName, IdleTool.ToolName];

    /// <summary>The cases of <paramref name="names"/>, sharing one cluster per WAN-leg kind.</summary>
    public static IReadOnlyList<BenchCase> CreateCases(IEnumerable<string> names)
    {
        var tls = new BenchCluster("tls", wanEncryption: true, 7400, "100.64.0.0/16", Isthmus.Core.Addressing.VirtualNetwork.DefaultImageBase);
        var clear = new BenchCluster("clear", wanEncryption: false, 7410, "100.65.0.0/16", CleartextImageBase);
        var legs = new BenchCluster("legs", wanEncryption: true, 7420, "100.66.0.0/16", LegsImageBase, ["--wan-trunks", "0"]);
        return [.. names.Select<string, BenchCase>(name => name switch
        {
            NativeCase.GatewayToGateway => NativeCase.Gateways(),
            NativeCase.FlatLan => NativeCase.Flat(),
            IsthmusCase.IntraSite => new IsthmusCase(name, "Isthmus a1 -> a2 (agent, router A, agent)", tls, "a1", "a2", NativeCase.FlatLan),
            IsthmusCase.InterSite => new IsthmusCase(name, "Isthmus a1 -> b1 (agent, router A, TLS 1.3 WAN leg, router B, agent)", tls, "a1", "b1", NativeCase.GatewayToGateway),
            IsthmusCase.InterSiteCleartext => new IsthmusCase(name, "Isthmus a1 -> b1 with wan_encryption = false", clear, "a1", "b1", NativeCase.GatewayToGateway),
            IsthmusCase.InterSiteLegs => new IsthmusCase(name, "Isthmus a1 -> b1, TLS, a WAN connection per stream (--wan-trunks 0)", legs, "a1", "b1", NativeCase.GatewayToGateway),
            "socat" => new SocatCase(name, 8192),
            "socat-big" => new SocatCase(name, 131072),
            "ssh" => new SshCase(name, null),
            "ssh-aes" => new SshCase(name, "aes128-gcm@openssh.com"),
            "openvpn" => new OpenVpnCase(name, encrypted: true),
            "openvpn-none" => new OpenVpnCase(name, encrypted: false),
            "wireguard-go" => new WireGuardCase(name),
            "nebula" => new NebulaCase(name),
            _ => throw new ArgumentException($"unknown case '{name}'"),
        })];
    }

    public static IReadOnlyList<BenchTool> CreateTools(IEnumerable<string> names) =>
        [.. names.Select<string, BenchTool>(name => name switch
        {
            Iperf3Tool.ToolName => new Iperf3Tool(),
            NetPipeTool.ToolName => new NetPipeTool(),
            MemcachedTool.ToolName => new MemcachedTool(),
            ConnectTool.ToolName => new ConnectTool(),
            IdleTool.ToolName => new IdleTool(),
            _ => throw new ArgumentException($"unknown tool '{name}'"),
        })];
}
