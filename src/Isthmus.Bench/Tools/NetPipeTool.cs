using System.Globalization;
using System.Runtime.CompilerServices;

namespace Isthmus.Bench.Tools;

/// <summary>
/// NetPIPE (NPtcp): ping-pong over message sizes 1 B .. upper bound. Its output file has one row per size:
/// bytes, Mbit/s, and the one-way time (half a round trip) in seconds. Figures: the small-message (≤ 64 B)
/// round trip (median over those sizes) and the peak bandwidth; the whole curve goes to the JSON and plots.
/// </summary>
public sealed class NetPipeTool : BenchTool
{
    public const string ToolName = "netpipe";
    public const string RttMetric = "netpipe rtt<=64B";
    public const string PeakMetric = "netpipe peak";

    public override string Name => ToolName;

    public override string Description => "NetPIPE NPtcp latency and bandwidth by message size";

    public override IReadOnlyList<string> Requires => ["NPtcp"];

    public override async IAsyncEnumerable<Measurement> RunAsync(ToolRun run, Action<MeasurementError> error, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var port = ToolPorts.NetPipe.ToString(CultureInfo.InvariantCulture);
        // A fixed repeat count (-n) and no perturbation (-p 0) keep the sweep short and the same for every case.
        var upper = run.Settings.Quick ? "65536" : "1048576";
        var repeats = run.Settings.Quick ? "20" : "100";
        string[] common = ["-P", port, "-u", upper, "-n", repeats, "-p", "0"];
        var server = run.StartServer("nptcp", "NPtcp", common);
        var file = Path.Combine(run.Work, $"np-r{run.Round}-{run.Case.Name}.out");
        List<CurvePoint>? curve = null;
        string? failure = null;
        double cpu = 0, wall = 0;
        try
        {
            await run.Context.WaitListeningAsync(run.Case.ServerNode, ToolPorts.NetPipe, server, cancellationToken).ConfigureAwait(false);
            var (output, c, w) = await run.RunClientAsync("NPtcp", ["-h", run.Case.Target, .. common, "-o", file], TimeSpan.FromSeconds(180), cancellationToken).ConfigureAwait(false);
            (cpu, wall) = (c, w);
            curve = File.Exists(file) ? Parse(File.ReadAllLines(file)) : [];
            if (curve.Count == 0 || curve[^1].Bytes < long.Parse(upper, CultureInfo.InvariantCulture))
            {
                failure = $"NPtcp exit {output.ExitCode}, {curve.Count} sizes measured: {Iperf3Tool.Excerpt(output)}";
            }
        }
        finally
        {
            await run.Context.StopAsync(server).ConfigureAwait(false);
        }

        if (failure is not null || curve is null)
        {
            error(new MeasurementError(run.Round, run.Case.Name, ToolName, failure ?? "no output"));
            yield break;
        }

        var small = curve.Where(p => p.Bytes <= 64).Select(p => p.RttMicroseconds).ToList();
        yield return run.Figure(RttMetric, Stats.Median(small), "µs", false, 0, cpu, wall) with { Curve = curve };
        yield return run.Figure(PeakMetric, curve.Max(p => p.Gbps), "Gbit/s", true, 0, cpu, wall);
    }

    public static List<CurvePoint> Parse(IEnumerable<string> lines)
    {
        var points = new List<CurvePoint>();
        foreach (var line in lines)
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 3 && long.TryParse(f[0], CultureInfo.InvariantCulture, out var bytes)
                && double.TryParse(f[1], CultureInfo.InvariantCulture, out var mbps) && double.TryParse(f[2], CultureInfo.InvariantCulture, out var seconds))
            {
                points.Add(new CurvePoint(bytes, mbps / 1000, 2e6 * seconds));
            }
        }

        return points;
    }
}
