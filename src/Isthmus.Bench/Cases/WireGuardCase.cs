namespace Isthmus.Bench.Cases;

/// <summary>wireguard-go (user space) on both gateways, configured with <c>wg set</c>; tunnel addresses 198.18.2.1/.2.</summary>
public sealed class WireGuardCase(string name) : TunnelCase
{
    public override string Name => name;

    public override string Description => "wireguard-go between gwa and gwb (TUN), a1 -> b1 by its address";

    public override IReadOnlyList<string> Requires => ["wireguard-go", "wg"];

    protected override IEnumerable<(string Node, string Dev)> Devices(BenchTopology topology) => [("gwa", topology.Dev("wga")), ("gwb", topology.Dev("wgb"))];

    protected override async Task SetupKeysAsync(BenchContext context, CancellationToken cancellationToken)
    {
        foreach (var g in new[] { "gwa", "gwb" })
        {
            await ShAsync($"wg genkey > '{Dir}/{g}.key' && wg pubkey < '{Dir}/{g}.key' > '{Dir}/{g}.pub'").ConfigureAwait(false);
        }
    }

    protected override async Task StartTunnelAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var t = context.Topology;
        var env = new Dictionary<string, string> { ["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1" };
        (string Node, string Dev, string Me, string PeerWan, string Peer, string PeerLan, string TunnelIp, string PeerTunnelIp)[] sides =
        [
            ("gwa", t.Dev("wga"), "gwa", BenchTopology.GatewayBWan, "gwb", BenchTopology.LanB, "198.18.2.1", "198.18.2.2"),
            ("gwb", t.Dev("wgb"), "gwb", BenchTopology.GatewayAWan, "gwa", BenchTopology.LanA, "198.18.2.2", "198.18.2.1"),
        ];
        foreach (var s in sides)
        {
            Daemon(context, s.Node, s.Node, "wireguard-go", ["-f", s.Dev], env);
        }

        foreach (var s in sides)
        {
            var socket = $"/var/run/wireguard/{s.Dev}.sock";
            for (var i = 0; i < 100 && !File.Exists(socket); i++)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }

            var peer = (await File.ReadAllTextAsync($"{Dir}/{s.Peer}.pub", cancellationToken).ConfigureAwait(false)).Trim();
            await t.InAsync(s.Node, "wg", "set", s.Dev, "private-key", $"{Dir}/{s.Me}.key", "listen-port", "51820",
                "peer", peer, "endpoint", s.PeerWan + ":51820", "allowed-ips", $"{s.PeerTunnelIp}/32,{s.PeerLan}").ConfigureAwait(false);
            await t.InAsync(s.Node, "ip", "addr", "add", s.TunnelIp + "/24", "dev", s.Dev).ConfigureAwait(false);
            await t.InAsync(s.Node, "ip", "link", "set", s.Dev, "mtu", "1420", "up").ConfigureAwait(false);
            await t.InAsync(s.Node, "ip", "route", "add", s.PeerLan, "dev", s.Dev).ConfigureAwait(false);
        }
    }
}
