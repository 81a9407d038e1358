using System.Diagnostics;
using Isthmus.Bench.Cases;

namespace Isthmus.Bench.Tools;

/// <summary>One tool against one case in one round: starts servers and runs clients as the case wraps them, meters relay CPU.</summary>
public sealed class ToolRun(BenchContext context, BenchCase benchCase, int round, string tool)
{
    public BenchContext Context => context;

    public BenchCase Case => benchCase;

    public int Round => round;

    public BenchSettings Settings => context.Settings;

    public string Work => context.WorkDirectory;

    public BenchProcess StartServer(string label, string file, params string[] args)
    {
        var (f, a) = benchCase.Wrap(true, Resolve(file), args);
        return context.Start($"r{round}-{benchCase.Name}-{label}", benchCase.ServerNode, f, a, benchCase.Environment);
    }

    /// <summary>Starts the client in the background (for tools that measure while it holds its connections).</summary>
    public BenchProcess StartClient(string label, string file, IReadOnlyList<string> args)
    {
        var (f, a) = benchCase.Wrap(false, Resolve(file), args);
        return context.Start($"r{round}-{benchCase.Name}-{label}", benchCase.ClientNode, f, a, benchCase.Environment);
    }

    /// <summary>Runs the client to completion in the client's namespace and meters the relays around it.</summary>
    public async Task<(CommandOutput Output, double RelayCpuSeconds, double WallSeconds)> RunClientAsync(string file, IReadOnlyList<string> args, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var (f, a) = benchCase.Wrap(false, Resolve(file), args);
        var relays = benchCase.RelayPids.ToList();
        var cpu0 = ProcessCpu.TreeSeconds(relays);
        var clock = Stopwatch.StartNew();
        var output = await Shell.RunAsync("ip", ["netns", "exec", context.Topology.Ns(benchCase.ClientNode), f, .. a], timeout, benchCase.Environment, cancellationToken).ConfigureAwait(false);
        var wall = clock.Elapsed.TotalSeconds;
        var cpu = ProcessCpu.TreeSeconds(relays) - cpu0;
        return (output, Math.Max(cpu, 0), wall);
    }

    public Measurement Figure(string metric, double value, string unit, bool higherIsBetter, long bytes, double cpu, double wall) =>
        new(round, benchCase.Name, tool, metric, value, unit, higherIsBetter, bytes, cpu, wall);

    public static string Resolve(string file) => Shell.Which(file) ?? file;
}
