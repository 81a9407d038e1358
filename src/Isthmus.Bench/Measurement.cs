namespace Isthmus.Bench;

/// <summary>One figure of one round: e.g. round 2, case socat, metric "iperf3 8192" = 3.7 Gbit/s.</summary>
/// <param name="Bytes">Payload bytes the client moved (for relay CPU per GiB); 0 when not meaningful.</param>
/// <param name="RelayCpuSeconds">CPU seconds the case's relay processes used during the client run.</param>
public sealed record Measurement(int Round, string Case, string Tool, string Metric, double Value, string Unit, bool HigherIsBetter,
    long Bytes, double RelayCpuSeconds, double WallSeconds)
{
    /// <summary>NetPIPE's curve (message size → bandwidth, round trip), for the plots.</summary>
    public IReadOnlyList<CurvePoint>? Curve { get; init; }
}

public sealed record CurvePoint(long Bytes, double Gbps, double RttMicroseconds);

/// <summary>A measurement that could not be taken (the tool failed, a peer would not start).</summary>
public sealed record MeasurementError(int Round, string Case, string Tool, string Message);
