using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;

namespace Isthmus.Bench.Tools;

/// <summary>
/// memcached with memcaslap (memaslap) as the client: get-only and set-only runs for 1 KiB and 64 KiB values.
/// A get run first stores the keys it will read (memaslap's warm-up), so it has no misses; the figure is
/// operations of the measured kind per second of the whole timed run.
/// </summary>
public sealed partial class MemcachedTool : BenchTool
{
    public const string ToolName = "memcached";

    public override string Name => ToolName;

    public override string Description => "memcached get/set by memcaslap, 1 KiB and 64 KiB items";

    public override IReadOnlyList<string> Requires => ["memcached", "memcaslap"];

    public static string Metric(string op, int valueBytes) => $"memcached {op} {valueBytes / 1024}k";

    public override async IAsyncEnumerable<Measurement> RunAsync(ToolRun run, Action<MeasurementError> error, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var port = ToolPorts.Memcached.ToString(CultureInfo.InvariantCulture);
        var server = run.StartServer("memcached", "memcached", "-u", "root", "-p", port, "-U", "0", "-t", "1", "-m", "1024", "-c", "1024");
        var sizes = run.Settings.Quick ? new[] { 1024 } : [1024, 65536];
        try
        {
            await run.Context.WaitListeningAsync(run.Case.ServerNode, ToolPorts.Memcached, server, cancellationToken).ConfigureAwait(false);
            foreach (var size in sizes)
            {
                foreach (var op in new[] { "get", "set" })
                {
                    var config = Path.Combine(run.Work, $"memaslap-{op}-{size}.cfg");
                    // key sizes; value sizes; command proportions (0 = set, 1 = get)
                    await File.WriteAllTextAsync(config, $"key\n32 32 1\nvalue\n{size} {size} 1\ncmd\n0 {(op == "set" ? 1 : 0)}\n1 {(op == "get" ? 1 : 0)}\n", cancellationToken).ConfigureAwait(false);
                    // memaslap stores concurrency x window keys before a get run; one connection with a 1k window
                    // keeps that at 64 MiB for 64 KiB values (memaslap takes no window below 1k).
                    var (concurrency, window) = size > 4096 ? ("1", "1k") : ("8", "1k");
                    string[] args = ["-s", $"{run.Case.Target}:{port}", "-T", "1", "-c", concurrency, "-w", window,
                        "-t", Math.Max(1, (int)Math.Round(run.Settings.Duration)).ToString(CultureInfo.InvariantCulture) + "s", "-F", config];
                    var (output, cpu, wall) = await run.RunClientAsync("memcaslap", args, ClientTimeout(run, 60), cancellationToken).ConfigureAwait(false);
                    var metric = Metric(op, size);
                    var text = output.StandardOutput + output.StandardError;
                    var count = CountRegex().Matches(text).FirstOrDefault(m => m.Groups[1].Value == op);
                    var time = RunTimeRegex().Match(text);
                    if (count is null || !time.Success || double.Parse(time.Groups[1].Value, CultureInfo.InvariantCulture) <= 0
                        || long.Parse(count.Groups[2].Value, CultureInfo.InvariantCulture) == 0 || MissRegex().Match(text) is { Success: true } miss && miss.Groups[1].Value != "0")
                    {
                        error(new MeasurementError(run.Round, run.Case.Name, metric, $"memcaslap exit {output.ExitCode}: {Iperf3Tool.Excerpt(output)}"));
                        continue;
                    }

                    var ops = long.Parse(count.Groups[2].Value, CultureInfo.InvariantCulture);
                    var seconds = double.Parse(time.Groups[1].Value, CultureInfo.InvariantCulture);
                    yield return run.Figure(metric, ops / seconds, "ops/s", true, ops * size, cpu, wall);
                }
            }
        }
        finally
        {
            await run.Context.StopAsync(server).ConfigureAwait(false);
        }
    }

    [GeneratedRegex(@"cmd_(get|set): (\d+)")]
    private static partial Regex CountRegex();

    [GeneratedRegex(@"Run time: ([\d.]+)s")]
    private static partial Regex RunTimeRegex();

    [GeneratedRegex(@"get_misses: (\d+)")]
    private static partial Regex MissRegex();
}
