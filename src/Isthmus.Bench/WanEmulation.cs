namespace Isthmus.Bench;

/// <summary>
/// Emulated WAN delay (<c>--wan-delay</c>). This kernel has no netem: the delay comes from the routers' own WAN
/// emulator (<c>isthmus router --wan-emulation delay=D</c>), so both bench clusters' routers start with it and
/// each delays what it sends by D (a round trip between sites grows by 2·D). It is on the Isthmus routers' WAN
/// legs only: the native, socat, ssh and VPN cases cross the WAN undelayed, so with a delay compare the Isthmus
/// inter-site cases across runs (0, 2.5, 5 ms), not with their ratios to native.
/// </summary>
public static class WanEmulation
{
    /// <summary>The extra router arguments for <paramref name="settings"/> (none without <c>--wan-delay</c>).</summary>
    public static IReadOnlyList<string> RouterArguments(BenchSettings settings) =>
        settings?.WanDelay is { } delay ? ["--wan-emulation", "delay=" + delay] : [];

    public static string Note(string delay) =>
        $"WAN delay {delay} one way on each Isthmus router's sends (its WAN emulator, --wan-emulation delay={delay}); "
        + "native and the other tools' paths are not delayed";
}
