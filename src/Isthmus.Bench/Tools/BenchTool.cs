namespace Isthmus.Bench.Tools;

/// <summary>A real measuring program (iperf3, NPtcp, memcaslap, the connect loop) and how to read its figures.</summary>
public abstract class BenchTool
{
    public abstract string Name { get; }

    public abstract string Description { get; }

    /// <summary>Programs that must be on PATH for this tool.</summary>
    public abstract IReadOnlyList<string> Requires { get; }

    /// <summary>Runs the tool's measurements for one case in one round; each failure is reported, the rest goes on.</summary>
    public abstract IAsyncEnumerable<Measurement> RunAsync(ToolRun run, Action<MeasurementError> error, CancellationToken cancellationToken);

    protected static TimeSpan ClientTimeout(ToolRun run, double extraSeconds = 30) => TimeSpan.FromSeconds(run.Settings.Duration + extraSeconds);
}
