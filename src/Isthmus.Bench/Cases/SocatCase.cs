using System.Globalization;

namespace Isthmus.Bench.Cases;

/// <summary>
/// A socat relay chain, as a user without root would build one: socat on gwa (listening on its LAN address)
/// to socat on gwb (listening on its WAN address) to b1, one pair per tool port; a1 dials gwa.
/// </summary>
public sealed class SocatCase(string name, int bufferBytes) : BenchCase
{
    private readonly List<BenchProcess> _relays = [];

    public override string Name => name;

    public override string Description => $"socat chain a1 -> gwa -> gwb -> b1, -b {bufferBytes}";

    public override string ClientNode => "a1";

    public override string ServerNode => "b1";

    public override string Target => BenchTopology.GatewayALan;

    public override IReadOnlyList<string> Requires => ["socat"];

    public override bool ForksPerConnection => true;

    public override IEnumerable<int> RelayPids => _relays.Where(r => !r.HasExited).Select(r => r.Pid);

    public override async Task StartAsync(BenchContext context, CancellationToken cancellationToken)
    {
        var b = bufferBytes.ToString(CultureInfo.InvariantCulture);
        foreach (var port in ToolPorts.All)
        {
            var p = port.ToString(CultureInfo.InvariantCulture);
            _relays.Add(context.Start($"{name}-gwa-{p}", "gwa", "socat", ["-b", b, $"TCP-LISTEN:{p},bind={BenchTopology.GatewayALan},reuseaddr,fork,nodelay", $"TCP:{BenchTopology.GatewayBWan}:{p},nodelay"]));
            _relays.Add(context.Start($"{name}-gwb-{p}", "gwb", "socat", ["-b", b, $"TCP-LISTEN:{p},bind={BenchTopology.GatewayBWan},reuseaddr,fork,nodelay", $"TCP:{BenchTopology.B1}:{p},nodelay"]));
        }

        foreach (var port in ToolPorts.All)
        {
            await context.WaitListeningAsync("gwa", port, null, cancellationToken).ConfigureAwait(false);
            await context.WaitListeningAsync("gwb", port, null, cancellationToken).ConfigureAwait(false);
        }
    }

    public override async Task StopAsync(BenchContext context)
    {
        foreach (var r in _relays)
        {
            await context.StopAsync(r).ConfigureAwait(false);
        }

        _relays.Clear();
    }
}
