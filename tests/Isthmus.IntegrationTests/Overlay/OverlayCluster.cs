using System.Text.RegularExpressions;
using Isthmus.IntegrationTests.Topology;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// A running Isthmus cluster on a namespace topology: the cluster directory, a router on every site's
/// gateway and a node agent on every compute node (site "a" has nodes a1, a2, …), all real processes.
/// </summary>
public sealed partial class OverlayCluster : IAsyncDisposable
{
    public const int RouterPort = 7400;
    public const int LanPort = 7401;
    public const int MetricsPort = 9400;

    /// <summary>The cluster network (CIDR) of every test cluster.</summary>
    public const string Network = "100.64.0.0/16";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private readonly ITestOutputHelper? _log;
    private readonly Dictionary<string, HostProcess> _routers = [];
    private readonly Dictionary<string, HostProcess> _agents = [];
    private readonly Dictionary<string, string> _vips = [];
    private readonly Dictionary<string, NetHost> _hosts = [];
    private string[] _routerArguments = [];

    private OverlayCluster(SiteTopology topology, string workDirectory, ITestOutputHelper? log)
    {
        Topology = topology;
        WorkDirectory = workDirectory;
        _log = log;
    }

    public SiteTopology Topology { get; }

    public string WorkDirectory { get; }

    public string ClusterDirectory => Path.Combine(WorkDirectory, "cluster");

    public string RuntimeDirectory => Path.Combine(WorkDirectory, "run");

    public IReadOnlyDictionary<string, string> Vips => _vips;

    public IReadOnlyDictionary<string, HostProcess> Routers => _routers;

    public IReadOnlyDictionary<string, HostProcess> Agents => _agents;

    public IReadOnlyDictionary<string, string?> Environment => new Dictionary<string, string?> { ["ISTHMUS_RUNTIME_DIR"] = RuntimeDirectory };

    /// <summary>The value of the metric <paramref name="name"/> (one series) in a Prometheus scrape.</summary>
    public static long MetricValue(string metrics, string name)
    {
        var line = metrics.Split('\n').First(l => l.StartsWith(name + "{", StringComparison.Ordinal));
        return long.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <param name="clusterSettings">
    /// Extra keys for the cluster file's <c>[cluster]</c> table, as TOML values (for example
    /// <c>["node_hostname"] = "true"</c>), written after the sites are added and before anything reads the file.
    /// </param>
    /// <param name="clusterFileTail">TOML appended to the cluster file before anything reads it (e.g. a <c>[domains]</c> table).</param>
    public static async Task<OverlayCluster> StartAsync(
        ITestOutputHelper? log,
        int sites = 2,
        int nodesPerSite = 2,
        bool wanEncryption = true,
        IReadOnlyDictionary<string, string>? clusterSettings = null,
        string? clusterFileTail = null,
        IReadOnlyList<string>? routerArguments = null)
    {
        TopologyRequirements.EnsureRoot();
        var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(sites, nodesPerSite), log).ConfigureAwait(false);
        var work = Directory.CreateTempSubdirectory("isthmus-it-").FullName;
        var cluster = new OverlayCluster(topology, work, log) { _routerArguments = [.. routerArguments ?? []] };
        try
        {
            await cluster.CreateClusterAsync(wanEncryption).ConfigureAwait(false);
            if (clusterSettings is { Count: > 0 })
            {
                await cluster.AddClusterSettingsAsync(clusterSettings).ConfigureAwait(false);
            }

            if (clusterFileTail is not null)
            {
                await File.AppendAllTextAsync(Path.Combine(cluster.ClusterDirectory, "cluster.toml"), "\n" + clusterFileTail + "\n").ConfigureAwait(false);
                log?.WriteLine($"cluster file tail: {clusterFileTail}");
            }

            foreach (var site in topology.SiteList)
            {
                cluster.StartRouter(site.Name);
            }

            foreach (var site in topology.SiteList)
            {
                await cluster.WaitForRouterAsync(site.Name).ConfigureAwait(false);
            }

            foreach (var site in topology.SiteList)
            {
                for (var i = 0; i < site.Nodes.Count; i++)
                {
                    await cluster.StartNodeAsync(site.Name + (i + 1)).ConfigureAwait(false);
                }
            }

            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The namespace host of node "a1" (site a, first node) or of a site gateway ("a-gw").</summary>
    public NetHost Host(string node)
    {
        if (_hosts.TryGetValue(node, out var cached))
        {
            return cached;
        }

        var match = NodeNameRegex().Match(node);
        if (!match.Success)
        {
            throw new ArgumentException($"node names are SITE + number, like a1: '{node}'");
        }

        var site = Topology.Sites[match.Groups[1].Value];
        return _hosts[node] = site.Nodes[int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) - 1];
    }

    public Site Site(string name) => Topology.Sites[name];

    public Task<CommandResult> IsthmusAsync(NetNamespace where, TimeSpan timeout, params string[] args) =>
        where.RunAsync(IsthmusPaths.Isthmus, args, timeout, Environment);

    /// <summary>Runs an admin command (<c>isthmus domain …</c>, <c>isthmus node revoke …</c>) from site a's gateway, which asks router a.</summary>
    public Task<CommandResult> AdminAsync(params string[] args) => AdminAtAsync(Topology.SiteList[0].Name, args);

    /// <summary>Runs an admin command from <paramref name="site"/>'s gateway, asking that site's router.</summary>
    public Task<CommandResult> AdminAtAsync(string site, params string[] args) =>
        IsthmusAsync(Site(site).Gateway, TimeSpan.FromSeconds(60), [.. args, "--cluster", ClusterDirectory, "--site", site]);

    public HostProcess StartIsthmus(NetNamespace where, params string[] args) => where.Start(IsthmusPaths.Isthmus, args, Environment);

    /// <summary>Starts an unmodified program as a program of <paramref name="node"/> (isthmus run --node).</summary>
    public HostProcess StartProgram(string node, string file, params string[] args) =>
        StartIsthmus(Host(node), ["run", "--node", node, "--", file, .. args]);

    /// <summary>
    /// Starts a program as a program of <paramref name="node"/> with the given interposition mode (isthmus run
    /// --mode; "seccomp-msg" is seccomp mode with --seccomp-msg).
    /// </summary>
    public HostProcess StartProgramIn(string mode, string node, string file, params string[] args) =>
        StartIsthmus(Host(node), ["run", "--node", node, .. ModeArguments(mode), "--", file, .. args]);

    /// <summary>Runs a program as a program of <paramref name="node"/> to completion with the given interposition mode.</summary>
    public Task<CommandResult> RunProgramInAsync(string mode, string node, TimeSpan timeout, string file, params string[] args) =>
        IsthmusAsync(Host(node), timeout, ["run", "--node", node, .. ModeArguments(mode), "--", file, .. args]);

    private static string[] ModeArguments(string mode) => mode == "seccomp-msg" ? ["--mode", "seccomp", "--seccomp-msg"] : ["--mode", mode];

    /// <summary>Runs an unmodified program as a program of <paramref name="node"/> to completion.</summary>
    public Task<CommandResult> RunProgramAsync(string node, TimeSpan timeout, string file, params string[] args) =>
        IsthmusAsync(Host(node), timeout, ["run", "--node", node, "--", file, .. args]);

    public void StartRouter(string site) => StartRouter(site, []);

    /// <summary>Starts <paramref name="site"/>'s router with <paramref name="extraArguments"/> after the cluster's router arguments.</summary>
    public void StartRouter(string site, IReadOnlyList<string> extraArguments)
    {
        var gateway = Site(site).Gateway;
        _routers[site] = StartIsthmus(gateway, ["router", ClusterDirectory, "--site", site, "--log-level", "Debug", "--metrics", $"{gateway.Address}:{MetricsPort}", .. _routerArguments, .. extraArguments]);
    }

    /// <summary>Stops <paramref name="site"/>'s router (SIGTERM) and starts it again with <paramref name="extraArguments"/>; its nodes re-enrol by themselves.</summary>
    public async Task RestartRouterAsync(string site, IReadOnlyList<string> extraArguments)
    {
        await _routers[site].StopAsync().ConfigureAwait(false);
        StartRouter(site, extraArguments);
        await WaitForRouterAsync(site).ConfigureAwait(false);
    }

    public async Task WaitForRouterAsync(string site)
    {
        await _routers[site].WaitForLineAsync(RouterUpRegex(), StartTimeout).ConfigureAwait(false);
    }

    /// <summary>Where every agent serves SOCKS5 on its own host (each node is a namespace of its own).</summary>
    public const string SocksEndpoint = "127.0.0.1:1080";

    /// <summary>Starts node <paramref name="node"/>'s agent and waits for its "NODE VIP" line.</summary>
    public async Task<string> StartNodeAsync(string node)
    {
        var site = NodeNameRegex().Match(node).Groups[1].Value;
        var agent = StartIsthmus(Host(node), "node", ClusterDirectory, "--site", site, "--name", node, "--socks", SocksEndpoint, "--log-level", "Debug");
        _agents[node] = agent;
        var line = await agent.WaitForLineAsync(l => l.StartsWith(node + " ", StringComparison.Ordinal), StartTimeout, OutputStream.StandardOutput).ConfigureAwait(false);
        var vip = line.Split(' ')[1];
        _vips[node] = vip;
        _log?.WriteLine($"node {node} up: {vip}");
        return vip;
    }

    /// <summary>
    /// Runs <paramref name="test"/>; if it fails, writes the last log lines of every router and agent to the
    /// test output first, so a failure in CI says which hop did what.
    /// </summary>
    public async Task WithLogsOnFailureAsync(ITestOutputHelper output, Func<Task> test)
    {
        try
        {
            await test().ConfigureAwait(false);
        }
        catch
        {
            // ISTHMUS_TEST_LOG_DIR=/some/dir keeps every log line of every router and agent of a failed test there.
            var keep = System.Environment.GetEnvironmentVariable("ISTHMUS_TEST_LOG_DIR");
            if (!string.IsNullOrEmpty(keep))
            {
                Directory.CreateDirectory(keep);
            }

            foreach (var (name, process) in _routers.Select(r => ("router " + r.Key, r.Value)).Concat(_agents.Select(a => ("agent " + a.Key, a.Value))))
            {
                if (!string.IsNullOrEmpty(keep))
                {
                    await File.WriteAllLinesAsync(Path.Combine(keep, name.Replace(' ', '-') + ".log"), process.StandardErrorLines).ConfigureAwait(false);
                }

                output.WriteLine($"--- {name} (last 60 log lines)");
                foreach (var line in process.StandardErrorLines.TakeLast(60))
                {
                    output.WriteLine(line);
                }
            }

            throw;
        }
    }

    /// <summary>Scrapes a router's Prometheus endpoint from its gateway namespace.</summary>
    public async Task<string> ScrapeRouterMetricsAsync(string site)
    {
        var gateway = Site(site).Gateway;
        var result = await gateway.RunAsync("/usr/bin/python3", ["-c", "import sys,urllib.request as u; print(u.urlopen(sys.argv[1], timeout=10).read().decode())", $"http://{gateway.Address}:{MetricsPort}/metrics"], StartTimeout).ConfigureAwait(false);
        return result.EnsureSuccess().StandardOutput;
    }

    public async Task StopNodeAsync(string node)
    {
        await _agents[node].StopAsync().ConfigureAwait(false);
        _agents.Remove(node);
    }

    private async Task CreateClusterAsync(bool wanEncryption)
    {
        var host = Topology.SiteList[0].Gateway;
        var args = new List<string> { "cluster", "new", ClusterDirectory, "--network", Network, "--name", "it" };
        if (!wanEncryption)
        {
            args.Add("--no-wan-encryption");
        }

        (await IsthmusAsync(host, TimeSpan.FromSeconds(60), [.. args]).ConfigureAwait(false)).EnsureSuccess();
        foreach (var site in Topology.SiteList)
        {
            (await IsthmusAsync(host, TimeSpan.FromSeconds(60), "cluster", "add-site", ClusterDirectory, site.Name,
                "--wan", $"{site.Gateway.WanAddress}:{RouterPort}", "--lan", $"{site.Gateway.Address}:{LanPort}").ConfigureAwait(false)).EnsureSuccess();
        }
    }

    /// <summary>Sets <c>key = value</c> lines in the <c>[cluster]</c> table of the cluster file (replacing a key already there).</summary>
    private async Task AddClusterSettingsAsync(IReadOnlyDictionary<string, string> settings)
    {
        var file = Path.Combine(ClusterDirectory, "cluster.toml");
        var lines = (await File.ReadAllLinesAsync(file).ConfigureAwait(false)).ToList();
        var table = lines.FindIndex(l => l.Trim() == "[cluster]");
        if (table < 0)
        {
            throw new InvalidOperationException($"{file} has no [cluster] table");
        }

        var end = lines.FindIndex(table + 1, l => l.TrimStart().StartsWith('['));
        end = end < 0 ? lines.Count : end;
        foreach (var (key, value) in settings)
        {
            var existing = lines.FindIndex(table + 1, end - table - 1, l => l.Split('=', 2)[0].Trim() == key);
            if (existing >= 0)
            {
                lines[existing] = $"{key} = {value}";
            }
            else
            {
                lines.Insert(table + 1, $"{key} = {value}");
                end++;
            }
        }

        await File.WriteAllLinesAsync(file, lines).ConfigureAwait(false);
        _log?.WriteLine($"cluster file [cluster]: {string.Join(", ", settings.Select(s => $"{s.Key} = {s.Value}"))}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in _agents.Values)
        {
            await agent.StopAsync().ConfigureAwait(false);
        }

        foreach (var router in _routers.Values)
        {
            await router.StopAsync().ConfigureAwait(false);
        }

        await Topology.DisposeAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex("^([a-z][a-z0-9]{0,3}?)([0-9]+)$")]
    private static partial Regex NodeNameRegex();

    [GeneratedRegex("Router .* up:")]
    private static partial Regex RouterUpRegex();
}
