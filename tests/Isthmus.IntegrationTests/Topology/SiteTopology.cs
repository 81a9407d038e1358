using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>
/// Sites in network namespaces, joined by a WAN bridge:
/// <code>
///   PFX-a-n1 ─┐                                           ┌─ PFX-b-n1
///   PFX-a-n2 ─┴─[PFX-abr] PFX-a-gw ──[PFX-wbr in PFX-wan]── PFX-b-gw [PFX-bbr]─┴─ PFX-b-n2
///   192.0.2.10, .11   192.0.2.1 | 203.0.113.1       203.0.113.2 | 198.51.100.1   198.51.100.10, .11
/// </code>
/// LANs: site 0 192.0.2.0/24, 1 198.51.100.0/24, 2 198.18.1.0/24, 3 198.18.2.0/24, … (gateway .1,
/// nodes .10 up); WAN 203.0.113.0/24 with gateway of site i at .(i+1). No forwarding and no default
/// route anywhere: a node reaches only its own LAN, a gateway its LAN and the other gateways.
/// Every namespace and link name starts with a random per-run prefix ("i" + 5 of a-z0-9); disposal
/// stops every process group started here and deletes every namespace with the prefix.
/// </summary>
public sealed partial class SiteTopology : IAsyncDisposable
{
    /// <summary>Holds one marker per live run, "PREFIX.pid", naming the owning test process (see <see cref="SweepStale"/>).</summary>
    public const string MarkerDirectory = "/run/isthmus-test";

    private static readonly ConcurrentDictionary<SiteTopology, byte> Live = new();
    private readonly Lock _lock = new();
    private readonly List<HostProcess> _processes = [];
    private readonly List<NetNamespace> _namespaces = [];
    private readonly TopologyLog _log;
    private readonly TopologySpec _spec;
    private int _disposed;

    static SiteTopology() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        // Last resort when the test host exits without disposing (a crash leaves the marker for SweepStale).
        foreach (var topology in Live.Keys)
        {
            topology.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        }
    };

    private SiteTopology(TopologySpec spec, string prefix, ITestOutputHelper? output)
    {
        _spec = spec;
        Prefix = prefix;
        _log = new TopologyLog(output, $"[{prefix}]");
        Wan = AddNamespace(new NetNamespace(this, "wan", $"{prefix}-wan"));
        WanBridge = $"{prefix}-wbr";
        var sites = new List<Site>();
        for (var i = 0; i < spec.Sites.Count; i++)
        {
            var s = spec.Sites[i];
            var site = new Site(s.Name, i, LanPrefixOf(i)) { WanPort = $"{prefix}-{s.Name}wp" };
            site.Gateway = AddNamespace(new GatewayHost(
                this, site, $"{s.Name}-gw", $"{prefix}-{s.Name}-gw", $"{site.LanPrefix}.1", $"{prefix}-{s.Name}br",
                $"203.0.113.{i + 1}", $"{prefix}-{s.Name}w"));
            site.Nodes = [.. Enumerable.Range(1, s.Nodes).Select(n => AddNamespace(new NetHost(
                this, site, $"{s.Name}-n{n}", $"{prefix}-{s.Name}-n{n}", $"{site.LanPrefix}.{9 + n}", $"{prefix}-{s.Name}{n}")))];
            sites.Add(site);
        }

        SiteList = sites;
        Sites = sites.ToDictionary(s => s.Name, StringComparer.Ordinal);
    }

    /// <summary>Per-run prefix of every namespace and link name, e.g. "ik3x9q".</summary>
    public string Prefix { get; }

    /// <summary>The namespace holding the WAN bridge.</summary>
    public NetNamespace Wan { get; }

    /// <summary>WAN bridge (in <see cref="Wan"/>).</summary>
    public string WanBridge { get; }

    public IReadOnlyDictionary<string, Site> Sites { get; }

    /// <summary>Sites in spec order.</summary>
    public IReadOnlyList<Site> SiteList { get; }

    /// <summary>Every namespace of the topology: wan, then per site the gateway and its nodes.</summary>
    public IReadOnlyList<NetNamespace> Namespaces
    {
        get
        {
            lock (_lock)
            {
                return [.. _namespaces];
            }
        }
    }

    /// <summary>Every process started so far (running or not).</summary>
    public IReadOnlyList<HostProcess> Processes
    {
        get
        {
            lock (_lock)
            {
                return [.. _processes];
            }
        }
    }

    /// <summary>Path of this run's marker file.</summary>
    public string MarkerPath => MarkerPathOf(Prefix);

    /// <summary>
    /// Builds the topology (needs root; fails the test otherwise). Sweeps namespaces of dead earlier
    /// runs first. On failure everything built so far is torn down before the exception propagates.
    /// </summary>
    public static async Task<SiteTopology> CreateAsync(TopologySpec spec, ITestOutputHelper? log = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        TopologyRequirements.EnsureRoot();
        SweepStale(log);

        var topology = new SiteTopology(spec, NewPrefix(), log);
        topology.WriteMarker();
        Live.TryAdd(topology, 0);
        try
        {
            await topology.BuildAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            topology._log.Write($"build failed: {e.Message}");
            await topology.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return topology;
    }

    /// <summary>Takes the site's WAN link down (its port on the WAN bridge): the gateway loses the WAN.</summary>
    public async Task CutWanAsync(string site)
    {
        var s = GetSite(site);
        await Wan.IpAsync("link", "set", "dev", s.WanPort, "down").ConfigureAwait(false);
        _log.Write($"WAN of site {s.Name} cut ({s.WanPort} down)");
    }

    /// <summary>Cuts the site's WAN link for <paramref name="outage"/>, then brings it back up.</summary>
    public async Task OutageAsync(string site, TimeSpan outage)
    {
        await CutWanAsync(site).ConfigureAwait(false);
        await Task.Delay(outage).ConfigureAwait(false);
        await RestoreWanAsync(site).ConfigureAwait(false);
    }

    /// <summary>Brings the site's WAN link back up.</summary>
    public async Task RestoreWanAsync(string site)
    {
        var s = GetSite(site);
        await Wan.IpAsync("link", "set", "dev", s.WanPort, "up").ConfigureAwait(false);
        _log.Write($"WAN of site {s.Name} restored ({s.WanPort} up)");
    }

    /// <summary>
    /// tbf <paramref name="rate"/> (tc syntax, e.g. "1gbit"; burst 256kb latency 20ms as in topo.sh) on both
    /// directions of the site's WAN link: egress of its WAN-bridge port (towards the site) and of the
    /// gateway's WAN veth (from the site).
    /// </summary>
    public async Task LimitWanAsync(string site, string rate)
    {
        var s = GetSite(site);
        ArgumentException.ThrowIfNullOrWhiteSpace(rate);
        string[] tbf = ["root", "tbf", "rate", rate, "burst", "256kb", "latency", "20ms"];
        await Wan.TcAsync(["qdisc", "replace", "dev", s.WanPort, .. tbf]).ConfigureAwait(false);
        await s.Gateway.TcAsync(["qdisc", "replace", "dev", s.Gateway.WanInterface, .. tbf]).ConfigureAwait(false);
        _log.Write($"WAN of site {s.Name} limited to {rate}");
    }

    /// <summary>Removes the tbf of <see cref="LimitWanAsync"/> (no-op when none).</summary>
    public async Task UnlimitWanAsync(string site)
    {
        var s = GetSite(site);
        foreach (var (ns, dev) in new[] { (Wan, s.WanPort), ((NetNamespace)s.Gateway, s.Gateway.WanInterface) })
        {
            if ((await ns.TcAsync("qdisc", "show", "dev", dev).ConfigureAwait(false)).Contains("qdisc tbf", StringComparison.Ordinal))
            {
                await ns.TcAsync("qdisc", "del", "dev", dev, "root").ConfigureAwait(false);
            }
        }

        _log.Write($"WAN of site {s.Name} unlimited");
    }

    /// <summary>
    /// Pings (-c1 -W1) that must succeed: node → own gateway and own site's nodes, gateway → own nodes,
    /// gateway → every other gateway's WAN address; and must fail: node → other sites' gateways (LAN and
    /// WAN address) and nodes, gateway → other sites' LAN addresses. Throws <see cref="TopologyException"/>
    /// with the whole table when any check disagrees; returns the report otherwise.
    /// </summary>
    public async Task<IsolationReport> IsolationCheckAsync()
    {
        var plan = new List<(NetHost From, string To, string Address, bool Expect)>();
        foreach (var site in SiteList)
        {
            var gw = site.Gateway;
            foreach (var node in site.Nodes)
            {
                plan.Add((node, gw.Name, gw.Address, true));
                plan.Add((gw, node.Name, node.Address, true));
                foreach (var peer in site.Nodes.Where(p => p != node))
                {
                    plan.Add((node, peer.Name, peer.Address, true));
                }
            }

            foreach (var other in SiteList.Where(o => o != site))
            {
                plan.Add((gw, other.Gateway.Name, other.Gateway.WanAddress, true));
                plan.Add((gw, other.Gateway.Name, other.Gateway.Address, false));
                foreach (var remote in other.Nodes)
                {
                    plan.Add((gw, remote.Name, remote.Address, false));
                }

                foreach (var node in site.Nodes)
                {
                    plan.Add((node, other.Gateway.Name, other.Gateway.Address, false));
                    plan.Add((node, other.Gateway.Name, other.Gateway.WanAddress, false));
                    foreach (var remote in other.Nodes)
                    {
                        plan.Add((node, remote.Name, remote.Address, false));
                    }
                }
            }
        }

        using var gate = new SemaphoreSlim(16);
        var checks = await Task.WhenAll(plan.Select(async p =>
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                var r = await p.From.PingAsync(p.Address).ConfigureAwait(false);
                var detail = (r.StandardError.Trim() + " " + r.StandardOutput.Split('\n').FirstOrDefault(l => l.Contains("packet", StringComparison.Ordinal))).Trim();
                return new ReachabilityCheck(p.From.Name, p.To, p.Address, p.Expect, r.Succeeded, $"exit {r.ExitCode}: {detail}");
            }
            finally
            {
                gate.Release();
            }
        })).ConfigureAwait(false);

        var report = new IsolationReport(checks);
        _log.Write($"isolation check: {checks.Count(c => c.Ok)}/{checks.Length} as expected");
        if (!report.Ok)
        {
            throw new TopologyException($"isolation check failed:\n{report}");
        }

        return report;
    }

    /// <summary>
    /// SIGTERM to every process group started here, SIGKILL to those left after 2 s, then deletes every
    /// namespace whose name starts with the prefix (their links go with them) and the marker. Logs what it
    /// cleaned. Never throws; what could not be cleaned is logged and left for <see cref="SweepStale"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        Live.TryRemove(this, out _);
        var processes = Processes;
        try
        {
            var alive = processes.Where(p => p.IsGroupAlive()).ToList();
            foreach (var p in alive)
            {
                p.Signal(Signals.Terminate);
            }

            var killed = new List<HostProcess>();
            if (!await Poll.UntilAsync(() => alive.All(p => !p.IsGroupAlive()), TimeSpan.FromSeconds(2)).ConfigureAwait(false))
            {
                killed = [.. alive.Where(p => p.IsGroupAlive())];
                foreach (var p in killed)
                {
                    p.Kill();
                }

                await Poll.UntilAsync(() => killed.All(p => !p.IsGroupAlive()), TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }

            var survivors = alive.Where(p => p.IsGroupAlive()).ToList();
            _log.Write($"teardown: {processes.Count} processes started, {alive.Count} groups still running got SIGTERM" +
                       (killed.Count > 0 ? $", SIGKILL after 2 s: {string.Join(", ", killed)}" : "") +
                       (survivors.Count > 0 ? $"; STILL ALIVE: {string.Join(", ", survivors)}" : ""));
        }
        catch (Exception e)
        {
            _log.Write($"teardown: stopping processes failed: {e}");
        }

        var left = DeleteNamespaces(Prefix, _log);
        if (left.Count == 0)
        {
            try
            {
                File.Delete(MarkerPath);
            }
            catch (IOException e)
            {
                _log.Write($"teardown: cannot delete {MarkerPath}: {e.Message}");
            }
        }
        else
        {
            _log.Write($"teardown: NOT deleted: {string.Join(' ', left)} (marker kept for SweepStale)");
        }

        foreach (var p in processes)
        {
            p.DisposeProcess();
        }
    }

    /// <summary>
    /// Deletes the namespaces of earlier runs whose owning test process is dead (per the marker files in
    /// <see cref="MarkerDirectory"/>), SIGKILLing the process groups those runs recorded that still live in
    /// them. Namespaces without a marker are never touched. Returns the prefixes swept.
    /// </summary>
    public static IReadOnlyList<string> SweepStale(ITestOutputHelper? log = null)
    {
        var swept = new List<string>();
        if (!Directory.Exists(MarkerDirectory))
        {
            return swept;
        }

        var namespaces = ListNamespaces();
        foreach (var file in Directory.EnumerateFiles(MarkerDirectory, "*.pid"))
        {
            var prefix = Path.GetFileNameWithoutExtension(file);
            if (!PrefixPattern().IsMatch(prefix) || ReadMarker(file) is not { } marker || OwnerAlive(marker.Owner, marker.StartTime))
            {
                continue;
            }

            var tlog = new TopologyLog(log, $"[sweep {prefix}]");
            var mine = namespaces.Where(n => n.StartsWith(prefix + "-", StringComparison.Ordinal)).ToList();
            foreach (var ns in mine)
            {
                KillRecordedGroupsIn(ns, marker.Groups, tlog);
            }

            var left = DeleteNamespaces(prefix, tlog);
            if (left.Count == 0)
            {
                File.Delete(file);
            }

            tlog.Write($"owner pid {marker.Owner} is gone: swept {mine.Count - left.Count} namespaces" +
                       (left.Count > 0 ? $", could not delete {string.Join(' ', left)}" : ""));
            swept.Add(prefix);
        }

        return swept;
    }

    /// <summary>Names from `ip netns list` (optionally only those starting with <paramref name="startsWith"/>).</summary>
    public static IReadOnlyList<string> ListNamespaces(string startsWith = "")
    {
        var output = Shell.RunAsync("ip", ["netns", "list"]).GetAwaiter().GetResult().EnsureSuccess().StandardOutput;
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(' ')[0])
            .Where(n => n.StartsWith(startsWith, StringComparison.Ordinal))];
    }

    public override string ToString() => $"SiteTopology {Prefix} ({string.Join(", ", SiteList.Select(s => $"{s.Name}:{s.Nodes.Count}"))})";

    internal HostProcess StartProcess(NetNamespace host, string file, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var process = HostProcess.Start(host, file, args, environment, _log);
        lock (_lock)
        {
            _processes.Add(process);
            File.AppendAllText(MarkerPath, $"pgid {process.Id}\n");
        }

        return process;
    }

    private static string LanPrefixOf(int siteIndex) => siteIndex switch
    {
        0 => "192.0.2",
        1 => "198.51.100",
        _ => $"198.18.{siteIndex - 1}",
    };

    private static string MarkerPathOf(string prefix) => Path.Combine(MarkerDirectory, prefix + ".pid");

    private static string NewPrefix()
    {
        var existing = ListNamespaces();
        while (true)
        {
            var prefix = "i" + new string(RandomNumberGenerator.GetItems<char>("abcdefghijklmnopqrstuvwxyz0123456789", 5));
            if (!File.Exists(MarkerPathOf(prefix)) && !existing.Any(n => n.StartsWith(prefix + "-", StringComparison.Ordinal)))
            {
                return prefix;
            }
        }
    }

    private static bool OwnerAlive(int pid, ulong startTime) =>
        ProcFs.ReadStat(pid) is { IsZombie: false } stat && stat.StartTime == startTime;

    private static (int Owner, ulong StartTime, HashSet<int> Groups)? ReadMarker(string file)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (IOException)
        {
            return null;
        }

        var owner = lines.Length > 0 ? lines[0].Split(' ') : [];
        if (owner.Length != 3 || owner[0] != "owner" ||
            !int.TryParse(owner[1], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ||
            !ulong.TryParse(owner[2], NumberStyles.None, CultureInfo.InvariantCulture, out var start))
        {
            return null;
        }

        var groups = new HashSet<int>();
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split(' ');
            if (f.Length == 2 && f[0] == "pgid" && int.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var g) && g > 1)
            {
                groups.Add(g);
            }
        }

        return (pid, start, groups);
    }

    /// <summary>SIGKILL to recorded groups that have a member inside <paramref name="ns"/> (so they are the dead run's).</summary>
    private static void KillRecordedGroupsIn(string ns, HashSet<int> groups, TopologyLog log)
    {
        var pids = Shell.RunAsync("ip", ["netns", "pids", ns]).GetAwaiter().GetResult();
        if (!pids.Succeeded)
        {
            return;
        }

        var found = new SortedSet<int>();
        foreach (var line in pids.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) &&
                ProcFs.ReadStat(pid) is { IsZombie: false } stat && groups.Contains(stat.ProcessGroup))
            {
                found.Add(stat.ProcessGroup);
            }
        }

        foreach (var group in found)
        {
            if (ProcFs.SignalGroup(group, Signals.Kill))
            {
                log.Write($"SIGKILL to process group {group} left in {ns}");
            }
        }
    }

    /// <summary>Deletes every namespace named PREFIX-*; returns those still present afterwards.</summary>
    private static List<string> DeleteNamespaces(string prefix, TopologyLog log)
    {
        var mine = ListNamespaces(prefix + "-");
        foreach (var ns in mine)
        {
            var r = Shell.RunAsync("ip", ["netns", "delete", ns]).GetAwaiter().GetResult();
            log.Write(r.Succeeded ? $"deleted namespace {ns}" : $"cannot delete namespace {ns}: {r.StandardError.Trim()}");
        }

        return [.. ListNamespaces(prefix + "-")];
    }

    [GeneratedRegex("^i[a-z0-9]{5}$")]
    private static partial Regex PrefixPattern();

    private T AddNamespace<T>(T ns)
        where T : NetNamespace
    {
        _namespaces.Add(ns);
        return ns;
    }

    private Site GetSite(string site) =>
        Sites.TryGetValue(site, out var s) ? s : throw new ArgumentException($"no site '{site}' (sites: {string.Join(", ", Sites.Keys)})", nameof(site));

    private void WriteMarker()
    {
        Directory.CreateDirectory(MarkerDirectory);
        var self = ProcFs.ReadStat(Environment.ProcessId) ?? throw new InvalidOperationException("cannot read /proc/self/stat");
        var tmp = MarkerPath + ".tmp";
        File.WriteAllText(tmp, $"owner {Environment.ProcessId} {self.StartTime}\n");
        File.Move(tmp, MarkerPath, overwrite: true);
    }

    private async Task BuildAsync()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await CreateNamespaceAsync(Wan).ConfigureAwait(false);
        await Wan.IpAsync("link", "add", WanBridge, "type", "bridge").ConfigureAwait(false);
        await Wan.IpAsync("link", "set", "dev", WanBridge, "up").ConfigureAwait(false);
        await Task.WhenAll(SiteList.Select(BuildSiteAsync)).ConfigureAwait(false);
        if (_spec.WanRate is { } rate)
        {
            foreach (var site in SiteList)
            {
                await LimitWanAsync(site.Name, rate).ConfigureAwait(false);
            }
        }

        _log.Write($"built {Namespaces.Count} namespaces in {clock.ElapsedMilliseconds} ms: " + string.Join("; ", SiteList.Select(s =>
            $"{s.Name} {s.Subnet} gw {s.Gateway.Address}/{s.Gateway.WanAddress} nodes {string.Join(',', s.Nodes.Select(n => n.Address))}")));
    }

    private async Task BuildSiteAsync(Site site)
    {
        var gw = site.Gateway;
        await CreateNamespaceAsync(gw).ConfigureAwait(false);
        await Shell.CheckAsync("ip", "link", "add", gw.WanInterface, "netns", gw.Namespace, "type", "veth",
            "peer", "name", site.WanPort, "netns", Wan.Namespace).ConfigureAwait(false);
        await Wan.IpAsync("link", "set", "dev", site.WanPort, "master", WanBridge, "up").ConfigureAwait(false);
        await gw.IpAsync("addr", "add", $"{gw.WanAddress}/24", "dev", gw.WanInterface).ConfigureAwait(false);
        await gw.IpAsync("link", "set", "dev", gw.WanInterface, "up").ConfigureAwait(false);
        await gw.IpAsync("link", "add", gw.LanInterface, "type", "bridge").ConfigureAwait(false);
        await gw.IpAsync("addr", "add", $"{gw.Address}/24", "dev", gw.LanInterface).ConfigureAwait(false);
        await gw.IpAsync("link", "set", "dev", gw.LanInterface, "up").ConfigureAwait(false);
        await Task.WhenAll(site.Nodes.Select(async node =>
        {
            var port = node.LanInterface + "p";
            await CreateNamespaceAsync(node).ConfigureAwait(false);
            await Shell.CheckAsync("ip", "link", "add", node.LanInterface, "netns", node.Namespace, "type", "veth",
                "peer", "name", port, "netns", gw.Namespace).ConfigureAwait(false);
            await gw.IpAsync("link", "set", "dev", port, "master", gw.LanInterface, "up").ConfigureAwait(false);
            await node.IpAsync("addr", "add", $"{node.Address}/24", "dev", node.LanInterface).ConfigureAwait(false);
            await node.IpAsync("link", "set", "dev", node.LanInterface, "up").ConfigureAwait(false);
        })).ConfigureAwait(false);
    }

    /// <summary>ip netns add; lo up; no forwarding; IPv6 only on lo (new links get none: no DAD/RS noise).</summary>
    private static async Task CreateNamespaceAsync(NetNamespace ns)
    {
        await Shell.CheckAsync("ip", "netns", "add", ns.Namespace).ConfigureAwait(false);
        List<string> sysctls = ["net.ipv4.ip_forward=0"];
        if (Directory.Exists("/proc/sys/net/ipv6"))
        {
            sysctls.AddRange(["net.ipv6.conf.all.forwarding=0", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.lo.disable_ipv6=0"]);
        }

        var output = await Shell.CheckAsync("ip",
        [
            "netns", "exec", ns.Namespace, Shell.Resolve("sh"), "-c",
            "ip=$1; sysctl=$2; shift 2; \"$ip\" link set dev lo up && \"$sysctl\" -qw \"$@\" && readlink /proc/self/ns/net",
            "sh", Shell.Resolve("ip"), Shell.Resolve("sysctl"), .. sysctls,
        ]).ConfigureAwait(false);
        ns.NamespaceId = output.Trim();
    }
}
