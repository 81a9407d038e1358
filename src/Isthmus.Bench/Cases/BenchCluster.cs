using Isthmus.Cluster;
using Isthmus.Core.Addressing;

namespace Isthmus.Bench.Cases;

/// <summary>
/// An Isthmus cluster on the bench topology: routers on gwa and gwb, agents on a1, a2 (site a) and b1
/// (site b). Clusters (TLS and cleartext WAN legs over trunks; TLS with a connection per stream) run side by
/// side: each has its own directory, runtime directory, router ports, network and loopback image range, so they
/// never share a socket.
/// </summary>
/// <param name="routerArguments">Extra router flags of this cluster (e.g. <c>--wan-trunks 0</c>).</param>
public sealed class BenchCluster(string name, bool wanEncryption, int routerPort, string network, uint imageBase, IReadOnlyList<string>? routerArguments = null)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly Dictionary<string, BenchProcess> _processes = [];
    private readonly Dictionary<string, string> _vips = [];
    private string _directory = "";
    private string _runtime = "";

    public string Name => name;

    public bool WanEncryption => wanEncryption;

    private Task? _started;

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["ISTHMUS_RUNTIME_DIR"] = _runtime };

    public string Vip(string node) => _vips[node];

    public IEnumerable<int> Pids => _processes.Values.Where(p => !p.HasExited).Select(p => p.Pid);

    public IEnumerable<int> RouterPids => _processes.Where(p => p.Key.StartsWith("router-", StringComparison.Ordinal) && !p.Value.HasExited).Select(p => p.Value.Pid);

    /// <summary>Starts the cluster once; cases sharing it (intra- and inter-site) await the same start.</summary>
    public Task StartAsync(BenchContext context, CancellationToken cancellationToken) => _started ??= StartOnceAsync(context, cancellationToken);

    private async Task StartOnceAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var isthmus = context.Settings.IsthmusPath;
        _directory = Path.Combine(context.WorkDirectory, "cluster-" + name);
        _runtime = Path.Combine(context.WorkDirectory, "run-" + name);
        Directory.CreateDirectory(_runtime);
        ClusterCreator.New(_directory, IPv4Cidr.Parse(network), "bench" + name, imageBase, wanEncryption);
        ClusterCreator.AddSite(_directory, "a", new HostPort(BenchTopology.GatewayAWan, routerPort), new HostPort(BenchTopology.GatewayALan, routerPort + 1));
        ClusterCreator.AddSite(_directory, "b", new HostPort(BenchTopology.GatewayBWan, routerPort), new HostPort(BenchTopology.GatewayBLan, routerPort + 1));
        foreach (var (site, gateway) in new[] { ("a", "gwa"), ("b", "gwb") })
        {
            _processes["router-" + site] = context.Start($"{name}-router-{site}", gateway, isthmus, ["router", _directory, "--site", site, "--log-level", "Information", .. WanEmulation.RouterArguments(context.Settings), .. routerArguments ?? []], Environment);
        }

        foreach (var site in new[] { "a", "b" })
        {
            await _processes["router-" + site].WaitForLineAsync(l => l.Contains(" up:", StringComparison.Ordinal), StartTimeout, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (node, site) in new[] { ("a1", "a"), ("a2", "a"), ("b1", "b") })
        {
            var agent = context.Start($"{name}-agent-{node}", node, isthmus, ["node", _directory, "--site", site, "--name", node, "--log-level", "Information"], Environment);
            _processes["agent-" + node] = agent;
            var line = await agent.WaitForLineAsync(l => l.StartsWith(node + " ", StringComparison.Ordinal), StartTimeout, cancellationToken).ConfigureAwait(false);
            _vips[node] = line.Split(' ')[1];
        }

        context.Log($"cluster {name} ({(wanEncryption ? "TLS" : "cleartext")} WAN legs): a1 {_vips["a1"]}, a2 {_vips["a2"]}, b1 {_vips["b1"]}");
    }

    public async Task StopAsync(BenchContext context)
    {
        foreach (var p in _processes.Values.Reverse())
        {
            await context.StopAsync(p).ConfigureAwait(false);
        }

        _processes.Clear();
    }
}
