using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Isthmus.Bench;
using Isthmus.Bench.Report;
using Isthmus.Core;
using Isthmus.Core.Native;
using Spectre.Console;

namespace Isthmus.Cli.Commands;

/// <summary>
/// <c>isthmus bench</c>: builds a namespace topology, runs native, Isthmus and peer cases with real tools in
/// interleaved rounds, prints medians and ratios to native, and writes JSON and PNG plots.
/// </summary>
internal static partial class BenchCommand
{
    public static Command Create()
    {
        var cases = new Option<string?>("--cases")
        {
            Description = $"Comma-separated cases to run (default: all whose programs are installed): {string.Join(", ", BenchCatalog.CaseNames)}.",
        };
        var tools = new Option<string?>("--tools") { Description = $"Comma-separated tools (default: all installed): {string.Join(", ", BenchCatalog.ToolNames)}." };
        var rounds = new Option<int?>("--rounds") { Description = "Interleaved rounds; figures are medians over them (default 3, with --quick 1)." };
        var duration = new Option<double?>("--duration") { Description = "Seconds per timed client run (default 5, with --quick 2)." };
        var quick = new Option<bool>("--quick") { Description = "Short run: iperf3 default and 1 KiB writes only, NetPIPE up to 64 KiB, memcached 1 KiB items." };
        var sizes = new Option<string?>("--sizes") { Description = "Comma-separated iperf3 write sizes in bytes, 'def' for iperf3's default (default: def,100,1024,8192,65536)." };
        var idle = new Option<int?>("--idle-connections") { Description = "Connections the idle tool opens and holds while it reads the relays' memory (default 2000, with --quick 200; the scale target is 10000)." };
        var idleHold = new Option<double?>("--idle-hold") { Description = "Seconds the idle tool keeps its connections open after measuring, to inspect the relays (e.g. dotnet-gcdump, /proc) by hand (default 0)." };
        var parallel = new Option<int?>("--parallel") { Description = "Parallel TCP flows per iperf3 run (iperf3 -P), and client loops of a second connect run (after the sequential one); the figures are their sums (default 1)." };
        var wanRate = new Option<string?>("--wan-rate") { Description = "Cap both WAN directions with tbf at this tc rate, e.g. 1gbit or 500mbit." };
        var wanDelay = new Option<string?>("--wan-delay") { Description = "Emulated one-way delay of each Isthmus router's WAN sends, e.g. 2.5ms (the routers' --wan-emulation; native and other tools are not delayed)." };
        var json = new Option<string?>("--json") { Description = "Write the full report (environment, summaries, every figure) as JSON to FILE." };
        var plots = new Option<string?>("--plots") { Description = "Write PNG plots (iperf3 by write size, NetPIPE, memcached, ratios) into DIR." };
        var keep = new Option<bool>("--keep") { Description = "Keep the work directory (logs of every process, cluster directories) afterwards." };
        var command = new Command("bench", "Measure Isthmus against native and against peers (socat, ssh -L, OpenVPN, wireguard-go, Nebula) in network namespaces; needs root.")
        {
            cases, tools, rounds, duration, quick, sizes, parallel, idle, idleHold, wanRate, wanDelay, json, plots, keep,
        };
        command.SetAction(async (result, ct) =>
        {
            var isQuick = result.GetValue(quick);
            var settings = new BenchSettings
            {
                Cases = List(result.GetValue(cases), BenchCatalog.CaseNames, "--cases"),
                Tools = List(result.GetValue(tools), BenchCatalog.ToolNames, "--tools"),
                Rounds = Positive(result.GetValue(rounds) ?? (isQuick ? 1 : 3), "--rounds", 1000),
                Duration = Positive(result.GetValue(duration) ?? (isQuick ? 2 : 5), "--duration", 600),
                Quick = isQuick,
                Iperf3Sizes = Sizes(result.GetValue(sizes), isQuick),
                IdleHold = result.GetValue(idleHold) is { } hold ? Positive(hold, "--idle-hold", 3600) : 0,
                Iperf3Flows = Positive(result.GetValue(parallel) ?? 1, "--parallel", 128),
                IdleConnections = Positive(result.GetValue(idle) ?? (isQuick ? 200 : 2000), "--idle-connections", 100_000),
                WanRate = Rate(result.GetValue(wanRate)),
                WanDelay = Delay(result.GetValue(wanDelay)),
                JsonPath = result.GetValue(json),
                PlotDirectory = result.GetValue(plots),
                IsthmusPath = Environment.ProcessPath ?? throw new UserException("cannot find the isthmus executable", 1),
                Keep = result.GetValue(keep),
            };
            if (Libc.GetUid() != 0)
            {
                throw new UserException("isthmus bench needs root: it builds network namespaces and TUN devices (run it as root, e.g. with sudo)", 2);
            }

            return await RunAsync(settings, ct).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchSettings settings, CancellationToken ct)
    {
        using var stop = CommonOptions.StopOnSignals(out var registrations);
        using var _ = registrations;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, stop.Token);
        BenchReport report;
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            report = await new BenchRunner(settings, line => Console.Error.WriteLine($"bench [{clock.Elapsed.TotalSeconds,6:0.0}s] {line}")).RunAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            Console.Error.WriteLine("isthmus: bench interrupted; the topology and every process it started were torn down");
            return 130;
        }
        catch (BenchException e)
        {
            throw new UserException(e.Message, 1);
        }

        // Redirected to a file or a pipe: plain text, wide enough that no column wraps.
        var redirected = Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Out = new AnsiConsoleOutput(Console.Out),
        });
        if (redirected)
        {
            console.Profile.Width = 220;
        }

        ReportTable.Write(console, report);
        if (settings.JsonPath is { } path)
        {
            ReportJson.Write(path, report);
            Console.Error.WriteLine($"bench: JSON report in {path}");
        }

        if (settings.PlotDirectory is { } dir)
        {
            foreach (var file in ReportPlots.Write(dir, report))
            {
                Console.Error.WriteLine($"bench: plot {file}");
            }
        }

        return report.Errors.Count == 0 ? 0 : CommandLineHost.ExitFailure;
    }

    private static List<string> List(string? value, IReadOnlyList<string> known, string option)
    {
        if (value is null)
        {
            return [.. known];
        }

        var items = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();
        var unknown = items.Where(i => !known.Contains(i)).ToList();
        if (items.Count == 0 || unknown.Count > 0)
        {
            throw new UserException($"{option}: unknown '{string.Join(",", unknown)}'; choose from {string.Join(", ", known)}");
        }

        // Keep the catalogue's order, so native references run first in every round.
        return [.. known.Where(items.Contains)];
    }

    private static T Positive<T>(T value, string option, T max) where T : System.Numerics.INumber<T>
    {
        if (value <= T.Zero || value > max)
        {
            throw new UserException($"{option} must be above 0 and at most {max}, not {value}");
        }

        return value;
    }

    private static List<string> Sizes(string? value, bool quick)
    {
        if (value is null)
        {
            return quick ? ["def", "1024"] : ["def", "100", "1024", "8192", "65536"];
        }

        var sizes = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var s in sizes)
        {
            if (s != "def" && !(int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 1 << 20))
            {
                throw new UserException($"--sizes: '{s}' is not 'def' or a write size of 1..1048576 bytes");
            }
        }

        return sizes.Count > 0 ? sizes : throw new UserException("--sizes: give at least one size");
    }

    private static string? Rate(string? value) =>
        value is null || RateRegex().IsMatch(value) ? value : throw new UserException($"--wan-rate: '{value}' is not a tc rate like 1gbit, 500mbit or 100kbit");

    private static string? Delay(string? value)
    {
        if (value is null)
        {
            return null;
        }

        if (!DelayRegex().IsMatch(value))
        {
            throw new UserException($"--wan-delay: '{value}' is not a delay like 20ms or 1.5ms");
        }

        return value;
    }

    [GeneratedRegex("^[0-9]+(\\.[0-9]+)?[kmg]?bit$")]
    private static partial Regex RateRegex();

    [GeneratedRegex("^[0-9]+(\\.[0-9]+)?(us|ms|s)$")]
    private static partial Regex DelayRegex();
}
