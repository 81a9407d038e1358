using System.Text.Json.Serialization;

namespace Isthmus.Bench.Report;

/// <summary>Everything one run produced: where it ran, what it measured, the summaries, the raw figures and the failures.</summary>
public sealed record BenchReport(
    EnvironmentInfo Environment,
    RunInfo Run,
    IReadOnlyList<CaseSummary> Cases,
    IReadOnlyList<Measurement> Measurements,
    IReadOnlyList<MeasurementError> Errors,
    IReadOnlyList<string> Notes);

public sealed record EnvironmentInfo(string Date, string Kernel, int Cores, string Cpu, string LoadAverage, string Runtime, string Isthmus);

public sealed record RunInfo(IReadOnlyList<string> Cases, IReadOnlyList<string> Tools, int Rounds, double DurationSeconds, bool Quick,
    IReadOnlyList<string> Iperf3Sizes, string? WanRate, string? WanDelay, string TopologyPrefix,
    int IdleConnections, int Iperf3Flows);

public sealed record CaseSummary(string Case, string Description, string? Reference, IReadOnlyList<MetricSummary> Metrics);

/// <summary>
/// One metric of one case over the rounds. <see cref="Ratio"/> is this median over the reference case's
/// median of the same metric (above 1 is better for throughput, worse for latency). <see cref="RelayCpuPerGiB"/>
/// is the median over rounds of relay CPU seconds divided by the GiB the client moved in that run.
/// </summary>
public sealed record MetricSummary(string Metric, string Unit, bool HigherIsBetter, double Median, double Min, double Max, int Count,
    double? Ratio, [property: JsonPropertyName("relay_cpu_s_per_gib")] double? RelayCpuPerGiB, IReadOnlyList<double> Values)
{
    /// <summary>(max − min) / median, the spread of the rounds.</summary>
    public double Spread => Median > 0 && Count > 1 ? (Max - Min) / Median : 0;
}
