namespace Isthmus.Bench.Cases;

/// <summary>
/// Nebula between the gateways: a CA and two host certificates made with nebula-cert, each gateway routing
/// the other site's LAN as an unsafe route through the peer; no lighthouse (static host map).
/// </summary>
public sealed class NebulaCase(string name) : TunnelCase
{
    public override string Name => name;

    public override string Description => "Nebula between gwa and gwb (TUN), a1 -> b1 by its address";

    public override IReadOnlyList<string> Requires => ["nebula", "nebula-cert"];

    protected override IEnumerable<(string Node, string Dev)> Devices(BenchTopology topology) => [("gwa", topology.Dev("neba")), ("gwb", topology.Dev("nebb"))];

    protected override async Task SetupKeysAsync(BenchContext context, CancellationToken cancellationToken)
    {
        await Shell.CheckAsync("nebula-cert", "ca", "-name", "isthmus-bench", "-out-crt", $"{Dir}/ca.crt", "-out-key", $"{Dir}/ca.key").ConfigureAwait(false);
        await Shell.CheckAsync("nebula-cert", "sign", "-ca-crt", $"{Dir}/ca.crt", "-ca-key", $"{Dir}/ca.key", "-name", "gwa", "-ip", "198.18.3.1/24",
            "-subnets", BenchTopology.LanA, "-out-crt", $"{Dir}/gwa.crt", "-out-key", $"{Dir}/gwa.key").ConfigureAwait(false);
        await Shell.CheckAsync("nebula-cert", "sign", "-ca-crt", $"{Dir}/ca.crt", "-ca-key", $"{Dir}/ca.key", "-name", "gwb", "-ip", "198.18.3.2/24",
            "-subnets", BenchTopology.LanB, "-out-crt", $"{Dir}/gwb.crt", "-out-key", $"{Dir}/gwb.key").ConfigureAwait(false);
        var t = context.Topology;
        await File.WriteAllTextAsync($"{Dir}/gwa.yml", Config("gwa", t.Dev("neba"), BenchTopology.GatewayAWan, BenchTopology.GatewayBWan, "198.18.3.2", BenchTopology.LanB), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync($"{Dir}/gwb.yml", Config("gwb", t.Dev("nebb"), BenchTopology.GatewayBWan, BenchTopology.GatewayAWan, "198.18.3.1", BenchTopology.LanA), cancellationToken).ConfigureAwait(false);
    }

    protected override Task StartTunnelAsync(BenchContext context, CancellationToken cancellationToken)
    {
        Daemon(context, "gwa", "gwa", "nebula", ["-config", $"{Dir}/gwa.yml"]);
        Daemon(context, "gwb", "gwb", "nebula", ["-config", $"{Dir}/gwb.yml"]);
        return Task.CompletedTask;
    }

    private string Config(string me, string dev, string myWan, string peerWan, string peerIp, string peerLan) => $"""
        pki:
          ca: {Dir}/ca.crt
          cert: {Dir}/{me}.crt
          key: {Dir}/{me}.key
        static_host_map:
          "{peerIp}": ["{peerWan}:4242"]
        lighthouse:
          am_lighthouse: false
          hosts: []
        listen:
          host: {myWan}
          port: 4242
        punchy:
          punch: false
        tun:
          disabled: false
          dev: {dev}
          mtu: 1300
          unsafe_routes:
            - route: {peerLan}
              via: {peerIp}
        logging:
          level: info
        firewall:
          outbound:
            - port: any
              proto: any
              host: any
          inbound:
            - port: any
              proto: any
              host: any

        """;
}
