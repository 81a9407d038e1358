using System.Security.Cryptography;

namespace Isthmus.Bench;

/// <summary>
/// The bench's own namespace topology (the baseline's 5-namespace routed layout plus a second node at
/// site A and a flat-LAN pair), every name with a per-run prefix:
/// <code>
///   a1 ─┐                                                              
///   a2 ─┴─[bridge] gwa ─── wan (router) ─── gwb ─── b1                 fa ──[bridge in fsw]── fb
///   192.0.2.10/.11  192.0.2.1 | 203.0.113.2  .1 | .129  203.0.113.130 | 198.51.100.1  198.51.100.10   198.18.0.10 / .20
/// </code>
/// The WAN router knows only the two WAN /25s, the gateways only a route to the other gateway's /25, and the
/// nodes only their LAN: no default route anywhere, so a1 cannot reach b1 natively. Disposal kills what
/// still runs in the namespaces (only the bench's own programs run there) and deletes them.
/// </summary>
public sealed class BenchTopology : IAsyncDisposable
{
    public const string A1 = "192.0.2.10";
    public const string A2 = "192.0.2.11";
    public const string GatewayALan = "192.0.2.1";
    public const string GatewayAWan = "203.0.113.2";
    public const string WanA = "203.0.113.1";
    public const string WanB = "203.0.113.129";
    public const string GatewayBWan = "203.0.113.130";
    public const string GatewayBLan = "198.51.100.1";
    public const string B1 = "198.51.100.10";
    public const string FlatA = "198.18.0.10";
    public const string FlatB = "198.18.0.20";
    public const string LanA = "192.0.2.0/24";
    public const string LanB = "198.51.100.0/24";

    /// <summary>Where a marker per live run names its owning process, so a crashed run's namespaces can be swept.</summary>
    public const string MarkerDirectory = "/run/isthmus-bench";

    private static readonly string[] NodeNames = ["a1", "a2", "gwa", "wan", "gwb", "b1", "fa", "fb", "fsw"];
    private readonly List<string> _created = [];
    private readonly Action<string> _log;
    private string? _wanRate;

    private BenchTopology(string prefix, Action<string> log)
    {
        Prefix = prefix;
        _log = log;
    }

    public string Prefix { get; }

    public string Ns(string node) => $"{Prefix}-{node}";

    /// <summary>An interface name of this run (at most 15 characters).</summary>
    public string Dev(string name) => $"{Prefix}-{name}";

    public static async Task<BenchTopology> CreateAsync(Action<string> log, CancellationToken cancellationToken)
    {
        await SweepStaleAsync(log).ConfigureAwait(false);
        var prefix = "ib" + RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyz0123456789", 4);
        var topology = new BenchTopology(prefix, log);
        Directory.CreateDirectory(MarkerDirectory);
        await File.WriteAllTextAsync(Path.Combine(MarkerDirectory, prefix), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
        try
        {
            await topology.BuildAsync().ConfigureAwait(false);
            await topology.CheckAsync().ConfigureAwait(false);
        }
        catch
        {
            await topology.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return topology;
    }

    public Task<string> InAsync(string node, string file, params string[] args) =>
        Shell.CheckAsync("ip", ["netns", "exec", Ns(node), file, .. args]);

    public Task<CommandOutput> TryInAsync(string node, string file, params string[] args) =>
        Shell.RunAsync("ip", ["netns", "exec", Ns(node), file, .. args], TimeSpan.FromSeconds(30));

    /// <summary>tbf at <paramref name="rate"/> on both egress directions of the WAN router (as the baseline's topo.sh cap).</summary>
    public async Task LimitWanAsync(string rate)
    {
        foreach (var dev in new[] { Dev("wwa"), Dev("wwb") })
        {
            // burst must cover rate/HZ and a whole 64 KiB GSO super-packet
            await InAsync("wan", "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "20ms").ConfigureAwait(false);
        }

        _wanRate = rate;
        _log($"WAN limited to {rate} (tbf on both directions)");
    }

    public string? WanRate => _wanRate;

    /// <summary>Routes that let a1 and b1 reach the other site through their gateways (for the TUN-based peers).</summary>
    public async Task AddCrossSiteRoutesAsync()
    {
        await InAsync("a1", "ip", "route", "replace", LanB, "via", GatewayALan).ConfigureAwait(false);
        await InAsync("b1", "ip", "route", "replace", LanA, "via", GatewayBLan).ConfigureAwait(false);
    }

    public async Task RemoveCrossSiteRoutesAsync()
    {
        await TryInAsync("a1", "ip", "route", "del", LanB).ConfigureAwait(false);
        await TryInAsync("b1", "ip", "route", "del", LanA).ConfigureAwait(false);
    }

    /// <summary>True when a1 reaches b1's real address (it must not, except through a TUN peer).</summary>
    public async Task<bool> A1ReachesB1Async() => (await TryInAsync("a1", "ping", "-c1", "-W1", B1).ConfigureAwait(false)).Succeeded;

    private async Task BuildAsync()
    {
        foreach (var n in NodeNames)
        {
            await Shell.CheckAsync("ip", "netns", "add", Ns(n)).ConfigureAwait(false);
            _created.Add(Ns(n));
            await InAsync(n, "ip", "link", "set", "lo", "up").ConfigureAwait(false);
            await InAsync(n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1").ConfigureAwait(false);
        }

        // site A: a bridge in the gateway, a1 and a2 on it
        await InAsync("gwa", "ip", "link", "add", Dev("bra"), "type", "bridge").ConfigureAwait(false);
        await AddressAsync("gwa", Dev("bra"), GatewayALan + "/24").ConfigureAwait(false);
        foreach (var (node, address) in new[] { ("a1", A1), ("a2", A2) })
        {
            await VethAsync("gwa", Dev("v" + node), node, "eth0").ConfigureAwait(false);
            await InAsync("gwa", "ip", "link", "set", Dev("v" + node), "master", Dev("bra"), "up").ConfigureAwait(false);
            await AddressAsync(node, "eth0", address + "/24").ConfigureAwait(false);
        }

        // WAN: gwa — wan router — gwb
        await VethAsync("gwa", Dev("wa"), "wan", Dev("wwa")).ConfigureAwait(false);
        await VethAsync("wan", Dev("wwb"), "gwb", Dev("wb")).ConfigureAwait(false);
        await AddressAsync("gwa", Dev("wa"), GatewayAWan + "/25").ConfigureAwait(false);
        await AddressAsync("wan", Dev("wwa"), WanA + "/25").ConfigureAwait(false);
        await AddressAsync("wan", Dev("wwb"), WanB + "/25").ConfigureAwait(false);
        await AddressAsync("gwb", Dev("wb"), GatewayBWan + "/25").ConfigureAwait(false);
        await InAsync("wan", "sysctl", "-qw", "net.ipv4.ip_forward=1").ConfigureAwait(false);
        await InAsync("gwa", "ip", "route", "add", "203.0.113.128/25", "via", WanA).ConfigureAwait(false);
        await InAsync("gwb", "ip", "route", "add", "203.0.113.0/25", "via", WanB).ConfigureAwait(false);

        // site B: b1 straight on the gateway
        await VethAsync("gwb", Dev("vb1"), "b1", "eth0").ConfigureAwait(false);
        await AddressAsync("gwb", Dev("vb1"), GatewayBLan + "/24").ConfigureAwait(false);
        await AddressAsync("b1", "eth0", B1 + "/24").ConfigureAwait(false);

        // flat LAN: fa and fb on a bridge in fsw
        await InAsync("fsw", "ip", "link", "add", Dev("brf"), "type", "bridge").ConfigureAwait(false);
        await InAsync("fsw", "ip", "link", "set", Dev("brf"), "up").ConfigureAwait(false);
        foreach (var (node, address) in new[] { ("fa", FlatA), ("fb", FlatB) })
        {
            await VethAsync("fsw", Dev("f" + node), node, "eth0").ConfigureAwait(false);
            await InAsync("fsw", "ip", "link", "set", Dev("f" + node), "master", Dev("brf"), "up").ConfigureAwait(false);
            await AddressAsync(node, "eth0", address + "/24").ConfigureAwait(false);
        }

        _log($"topology {Prefix}: a1 {A1}, a2 {A2}, gwa {GatewayALan}|{GatewayAWan}, wan, gwb {GatewayBWan}|{GatewayBLan}, b1 {B1}; flat fa {FlatA}, fb {FlatB}");
    }

    private async Task CheckAsync()
    {
        (string From, string To, bool Expect)[] plan =
        [
            ("a1", GatewayALan, true), ("a1", A2, true), ("gwa", GatewayBWan, true), ("b1", GatewayBLan, true),
            ("fa", FlatB, true), ("a1", B1, false), ("a1", GatewayBWan, false), ("b1", A1, false),
        ];
        foreach (var (from, to, expect) in plan)
        {
            var ok = false;
            for (var i = 0; i < (expect ? 5 : 1) && !ok; i++)
            {
                ok = (await TryInAsync(from, "ping", "-c1", "-W1", to).ConfigureAwait(false)).Succeeded;
            }

            if (ok != expect)
            {
                throw new BenchException($"topology check failed: {from} -> {to} {(ok ? "reachable" : "unreachable")}, expected the opposite");
            }
        }
    }

    private async Task VethAsync(string ns1, string dev1, string ns2, string dev2)
    {
        await Shell.CheckAsync("ip", "link", "add", dev1, "netns", Ns(ns1), "type", "veth", "peer", "name", dev2, "netns", Ns(ns2)).ConfigureAwait(false);
        await InAsync(ns1, "ip", "link", "set", dev1, "up").ConfigureAwait(false);
        await InAsync(ns2, "ip", "link", "set", dev2, "up").ConfigureAwait(false);
    }

    private async Task AddressAsync(string node, string dev, string cidr)
    {
        await InAsync(node, "ip", "addr", "add", cidr, "dev", dev).ConfigureAwait(false);
        await InAsync(node, "ip", "link", "set", dev, "up").ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var ns in _created)
        {
            await KillAllInAsync(ns).ConfigureAwait(false);
            await Shell.RunAsync("ip", ["netns", "del", ns], TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }

        _created.Clear();
        File.Delete(Path.Combine(MarkerDirectory, Prefix));
        _log($"topology {Prefix} torn down");
    }

    /// <summary>Kills what still runs in one of our namespaces (only the bench's own programs run there), by PID.</summary>
    private static async Task KillAllInAsync(string ns)
    {
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var pids = (await Shell.RunAsync("ip", ["netns", "pids", ns], TimeSpan.FromSeconds(10)).ConfigureAwait(false)).StandardOutput
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (pids.Length == 0)
            {
                return;
            }

            foreach (var pid in pids)
            {
                if (int.TryParse(pid, System.Globalization.CultureInfo.InvariantCulture, out var p))
                {
                    _ = Isthmus.Core.Native.Libc.Kill(p, attempt == 0 ? 15 : 9);
                }
            }

            await Task.Delay(500).ConfigureAwait(false);
        }
    }

    /// <summary>Deletes the namespaces of earlier runs whose owning process is gone (a run killed with SIGKILL).</summary>
    private static async Task SweepStaleAsync(Action<string> log)
    {
        if (!Directory.Exists(MarkerDirectory))
        {
            return;
        }

        var namespaces = (await Shell.RunAsync("ip", ["netns", "list"], TimeSpan.FromSeconds(10)).ConfigureAwait(false)).StandardOutput
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).ToList();
        foreach (var marker in Directory.GetFiles(MarkerDirectory))
        {
            var prefix = Path.GetFileName(marker);
            if (int.TryParse(File.ReadAllText(marker), System.Globalization.CultureInfo.InvariantCulture, out var owner) && Directory.Exists($"/proc/{owner}"))
            {
                continue;
            }

            foreach (var ns in namespaces.Where(n => n.StartsWith(prefix + "-", StringComparison.Ordinal)))
            {
                await KillAllInAsync(ns).ConfigureAwait(false);
                await Shell.RunAsync("ip", ["netns", "del", ns], TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            }

            File.Delete(marker);
            log($"swept the namespaces of a dead earlier run ({prefix})");
        }
    }
}
