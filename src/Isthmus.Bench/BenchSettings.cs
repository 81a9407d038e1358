namespace Isthmus.Bench;

/// <summary>What one <c>isthmus bench</c> run measures and where it writes.</summary>
public sealed record BenchSettings
{
    /// <summary>Case names in the order they run within a round.</summary>
    public required IReadOnlyList<string> Cases { get; init; }

    public required IReadOnlyList<string> Tools { get; init; }

    public int Rounds { get; init; } = 3;

    /// <summary>Seconds of each timed client run (iperf3 -t, memcaslap -t, the connect loop).</summary>
    public double Duration { get; init; } = 5;

    /// <summary>Short run: fewer write sizes and item sizes, a shorter NetPIPE sweep.</summary>
    public bool Quick { get; init; }

    /// <summary>iperf3 write sizes ("def" is iperf3's default 128 KiB).</summary>
    public IReadOnlyList<string> Iperf3Sizes { get; init; } = ["def", "100", "1024", "8192", "65536"];

    /// <summary>Connections the idle tool opens and holds (the scale target is 10,000).</summary>
    public int IdleConnections { get; init; } = 2000;

    /// <summary>Seconds the idle tool keeps its connections open after reading memory (to inspect the relays by hand).</summary>
    public double IdleHold { get; init; }

    /// <summary>
    /// <c>--parallel</c>: parallel TCP flows of each iperf3 run (iperf3 -P), and, above 1, the client loops of the connect
    /// tool's second run (after its sequential one); the figures are their sums.
    /// </summary>
    public int Iperf3Flows { get; init; } = 1;

    /// <summary>tc rate for a tbf on both WAN directions, e.g. "1gbit"; null for none.</summary>
    public string? WanRate { get; init; }

    /// <summary>Emulated one-way WAN delay, e.g. "20ms" (needs the WAN emulator).</summary>
    public string? WanDelay { get; init; }

    public string? JsonPath { get; init; }

    public string? PlotDirectory { get; init; }

    /// <summary>The isthmus executable that routers, agents and <c>isthmus run</c> are started from.</summary>
    public required string IsthmusPath { get; init; }

    /// <summary>Keep the work directory (logs, cluster directories) afterwards.</summary>
    public bool Keep { get; init; }
}
