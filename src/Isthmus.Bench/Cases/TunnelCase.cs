namespace Isthmus.Bench.Cases;

/// <summary>
/// A site-to-site VPN peer with TUN devices in the gateway namespaces: the gateways forward, a1 and b1 get a
/// route to the other site's LAN through their gateway, and a1 dials b1's own address through the tunnel.
/// Everything added is removed on stop, and the runner checks that a1 cannot reach b1 natively afterwards.
/// </summary>
public abstract class TunnelCase : BenchCase
{
    private readonly List<BenchProcess> _daemons = [];

    public override string ClientNode => "a1";

    public override string ServerNode => "b1";

    public override string Target => BenchTopology.B1;

    public override IEnumerable<int> RelayPids => _daemons.Where(d => !d.HasExited).Select(d => d.Pid);

    protected string Dir { get; private set; } = "";

    public override Task SetupAsync(BenchContext context, CancellationToken cancellationToken)
    {
        Dir = Path.Combine(context.WorkDirectory, Name);
        Directory.CreateDirectory(Dir);
        File.SetUnixFileMode(Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return SetupKeysAsync(context, cancellationToken);
    }

    public sealed override async Task StartAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var t = context.Topology;
        await t.InAsync("gwa", "sysctl", "-qw", "net.ipv4.ip_forward=1").ConfigureAwait(false);
        await t.InAsync("gwb", "sysctl", "-qw", "net.ipv4.ip_forward=1").ConfigureAwait(false);
        await StartTunnelAsync(context, cancellationToken).ConfigureAwait(false);
        await t.AddCrossSiteRoutesAsync().ConfigureAwait(false);
        for (var i = 0; i < 20; i++)
        {
            if (await t.A1ReachesB1Async().ConfigureAwait(false))
            {
                return;
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }

        throw new BenchException($"{Name}: a1 cannot ping b1 through the tunnel; {string.Join("; ", _daemons.Select(d => $"{d.Label}: {d.Tail(5)}"))}");
    }

    public sealed override async Task StopAsync(BenchContext context)
    {
        var t = context.Topology;
        await t.RemoveCrossSiteRoutesAsync().ConfigureAwait(false);
        foreach (var d in _daemons)
        {
            await context.StopAsync(d).ConfigureAwait(false);
        }

        _daemons.Clear();
        await t.TryInAsync("gwa", "ip", "route", "del", BenchTopology.LanB).ConfigureAwait(false);
        await t.TryInAsync("gwb", "ip", "route", "del", BenchTopology.LanA).ConfigureAwait(false);
        foreach (var (node, dev) in Devices(t))
        {
            await t.TryInAsync(node, "ip", "link", "del", dev).ConfigureAwait(false);
        }

        await t.TryInAsync("gwa", "sysctl", "-qw", "net.ipv4.ip_forward=0").ConfigureAwait(false);
        await t.TryInAsync("gwb", "sysctl", "-qw", "net.ipv4.ip_forward=0").ConfigureAwait(false);
    }

    protected abstract Task SetupKeysAsync(BenchContext context, CancellationToken cancellationToken);

    protected abstract Task StartTunnelAsync(BenchContext context, CancellationToken cancellationToken);

    /// <summary>The TUN devices this peer creates (node, name), deleted on stop if the daemon left them.</summary>
    protected abstract IEnumerable<(string Node, string Dev)> Devices(BenchTopology topology);

    protected BenchProcess Daemon(BenchContext context, string label, string node, string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var d = context.Start($"{Name}-{label}", node, file, args, environment);
        _daemons.Add(d);
        return d;
    }

    protected static Task<string> ShAsync(string script) => Shell.CheckAsync("sh", "-c", script);
}
