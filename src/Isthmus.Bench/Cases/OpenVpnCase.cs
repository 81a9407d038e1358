namespace Isthmus.Bench.Cases;

/// <summary>
/// OpenVPN site-to-site over UDP between the gateways (no DCO, user space): TLS peer-to-peer with a small EC
/// PKI made by openssl (data channel negotiated, AES-256-GCM on OpenVPN 2.6), or static-key mode with no
/// cipher and no authentication (the cleartext reference).
/// </summary>
public sealed class OpenVpnCase(string name, bool encrypted) : TunnelCase
{
    public override string Name => name;

    public override string Description => $"OpenVPN between gwa and gwb (TUN, UDP), {(encrypted ? "TLS, AES-256-GCM" : "static key, no cipher")}";

    public override IReadOnlyList<string> Requires => ["openvpn", "openssl"];

    protected override IEnumerable<(string Node, string Dev)> Devices(BenchTopology topology) => [("gwa", topology.Dev("ova")), ("gwb", topology.Dev("ovb"))];

    protected override async Task SetupKeysAsync(BenchContext context, CancellationToken cancellationToken)
    {
        if (!encrypted)
        {
            await Shell.CheckAsync("openvpn", "--genkey", "secret", $"{Dir}/static.key").ConfigureAwait(false);
            return;
        }

        await ShAsync($"""
            set -e; cd '{Dir}'
            openssl ecparam -name prime256v1 -genkey -noout -out ca.key
            openssl req -x509 -new -key ca.key -days 2 -subj /CN=isthmus-bench-ca -out ca.crt
            for n in gwa gwb; do
              openssl ecparam -name prime256v1 -genkey -noout -out $n.key
              openssl req -new -key $n.key -subj /CN=$n -out $n.csr
              if [ $n = gwa ]; then eku=serverAuth; else eku=clientAuth; fi
              printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\nextendedKeyUsage=%s\n' $eku > $n.ext
              openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile $n.ext -out $n.crt 2>/dev/null
            done
            """).ConfigureAwait(false);
    }

    protected override async Task StartTunnelAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var t = context.Topology;
        (string Node, string Dev, string Local, string Remote, string Me, string Peer, string Role, string PeerLan)[] sides =
        [
            ("gwa", t.Dev("ova"), BenchTopology.GatewayAWan, BenchTopology.GatewayBWan, "198.18.1.1", "198.18.1.2", "server", BenchTopology.LanB),
            ("gwb", t.Dev("ovb"), BenchTopology.GatewayBWan, BenchTopology.GatewayAWan, "198.18.1.2", "198.18.1.1", "client", BenchTopology.LanA),
        ];
        var daemons = new List<BenchProcess>();
        foreach (var s in sides)
        {
            var args = new List<string>
            {
                "--dev", s.Dev, "--dev-type", "tun", "--disable-dco", "--proto", "udp", "--lport", "1194", "--verb", "3",
                "--ping", "10", "--ping-restart", "60", "--sndbuf", "4194304", "--rcvbuf", "4194304",
                "--local", s.Local, "--remote", s.Remote, "1194", "--ifconfig", s.Me, s.Peer,
            };
            if (encrypted)
            {
                var me = s.Node;
                args.AddRange([s.Role == "server" ? "--tls-server" : "--tls-client", "--ca", $"{Dir}/ca.crt", "--cert", $"{Dir}/{me}.crt",
                    "--key", $"{Dir}/{me}.key", "--remote-cert-tls", s.Role == "server" ? "client" : "server"]);
                if (s.Role == "server")
                {
                    args.AddRange(["--dh", "none"]);
                }
            }
            else
            {
                args.AddRange(["--secret", $"{Dir}/static.key", s.Role == "server" ? "0" : "1", "--cipher", "none", "--auth", "none"]);
            }

            daemons.Add(Daemon(context, s.Node, s.Node, "openvpn", args));
        }

        foreach (var d in daemons)
        {
            await d.WaitForLineAsync(l => l.Contains("Initialization Sequence Completed", StringComparison.Ordinal), TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }

        foreach (var s in sides)
        {
            await t.InAsync(s.Node, "ip", "route", "replace", s.PeerLan, "dev", s.Dev).ConfigureAwait(false);
        }
    }
}
