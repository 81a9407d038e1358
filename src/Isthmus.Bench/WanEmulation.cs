namespace Isthmus.Bench;

/// <summary>
/// The hook for emulated WAN delay (<c>--wan-delay</c>). This kernel has no netem; the WAN emulator is a
/// separate part (<c>isthmus wan-emulator</c>). When a build has it, it sets <see cref="Apply"/>, which puts the
/// delay on the bench topology's WAN; until then the bench says "not available" and measures nothing.
/// </summary>
public static class WanEmulation
{
    /// <summary>Applies a one-way delay (e.g. "20ms") to the WAN of the topology; null when no emulator is built in.</summary>
    public static Func<BenchTopology, string, CancellationToken, Task>? Apply { get; set; }

    public static bool Available => Apply is not null;
}
