using System.Globalization;
using System.Runtime.InteropServices;
using Isthmus.Bench.Cases;
using Isthmus.Bench.Report;
using Isthmus.Bench.Tools;

namespace Isthmus.Bench;

/// <summary>
/// One bench run: builds the topology, sets the cases up, then for each round runs every case (start its
/// relay, every tool, stop it) so machine noise hits all cases alike, and tears everything down at the end,
/// also when cancelled (SIGINT/SIGTERM) or when a step fails.
/// </summary>
public sealed class BenchRunner(BenchSettings settings, Action<string> log)
{
    public async Task<BenchReport> RunAsync(CancellationToken cancellationToken)
    {
        var notes = new List<string>();
        var errors = new List<MeasurementError>();
        var measurements = new List<Measurement>();
        var cases = BenchCatalog.CreateCases(settings.Cases).Where(c => Available(c.Name, c.Requires, notes)).ToList();
        var tools = BenchCatalog.CreateTools(settings.Tools).Where(t => Available(t.Name, t.Requires, notes)).ToList();
        if (tools.Any(t => t.Name == IdleTool.ToolName))
        {
            RaiseOpenFileLimit(notes);
        }
        var environment = DescribeEnvironment();
        log($"{environment.Date}: kernel {environment.Kernel}, {environment.Cores} cores ({environment.Cpu}), load {environment.LoadAverage}");
        var work = Directory.CreateTempSubdirectory("isthmus-bench-").FullName;
        BenchTopology? topology = null;
        BenchContext? context = null;
        try
        {
            topology = await BenchTopology.CreateAsync(log, cancellationToken).ConfigureAwait(false);
            if (settings.WanRate is { } rate)
            {
                await topology.LimitWanAsync(rate).ConfigureAwait(false);
                notes.Add($"WAN limited to {rate} by tbf on both directions (native-flat and isthmus-intra do not cross the WAN)");
            }

            if (settings.WanDelay is { } delay)
            {
                notes.Add(WanEmulation.Note(delay));
            }

            context = new BenchContext(settings, topology, work, log);
            // Set-ups are independent (keys, the two clusters): run them side by side.
            var setups = cases.Select(c => (Case: c, Task: c.SetupAsync(context, cancellationToken))).ToList();
            foreach (var (c, task) in setups)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (BenchException e)
                {
                    errors.Add(new MeasurementError(0, c.Name, "setup", e.Message));
                    log($"{c.Name}: set-up failed, left out: {e.Message}");
                    cases.Remove(c);
                }
            }

            for (var round = 1; round <= settings.Rounds; round++)
            {
                foreach (var c in cases)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    await RunCaseAsync(context, c, tools, round, measurements, errors, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            if (context is not null)
            {
                foreach (var c in cases)
                {
                    await TryAsync(() => c.StopAsync(context)).ConfigureAwait(false);
                    await TryAsync(() => c.TeardownAsync(context)).ConfigureAwait(false);
                }

                await context.StopAllAsync().ConfigureAwait(false);
            }

            if (topology is not null)
            {
                await topology.DisposeAsync().ConfigureAwait(false);
            }

            if (settings.Keep)
            {
                log($"kept {work}");
            }
            else
            {
                TryDelete(work);
            }
        }

        notes.Add("the machine may be shared with other jobs: figures are noisy; compare cases within one run (ratios), not across runs");
        var run = new RunInfo([.. cases.Select(c => c.Name)], [.. tools.Select(t => t.Name)], settings.Rounds, settings.Duration, settings.Quick,
            settings.Iperf3Sizes, settings.WanRate, settings.WanDelay, topology?.Prefix ?? "",
            settings.IdleConnections, settings.Iperf3Flows);
        return new BenchReport(environment, run, Summarizer.Summarize(cases, measurements), measurements, errors, notes);
    }

    private async Task RunCaseAsync(BenchContext context, BenchCase c, IReadOnlyList<BenchTool> tools, int round,
        List<Measurement> measurements, List<MeasurementError> errors, CancellationToken cancellationToken)
    {
        if (c is not (IsthmusCase or NativeCase) && await context.Topology.A1ReachesB1Async().ConfigureAwait(false))
        {
            throw new BenchException("a1 reaches b1 natively before a peer started: a route was left behind; the topology is broken");
        }

        try
        {
            await c.StartAsync(context, cancellationToken).ConfigureAwait(false);
            foreach (var tool in tools)
            {
                var run = new ToolRun(context, c, round, tool.Name);
                try
                {
                    await foreach (var m in tool.RunAsync(run, e => { errors.Add(e); log($"[round {round}/{settings.Rounds}] {c.Name} {e.Tool}: FAILED {e.Message}"); }, cancellationToken).ConfigureAwait(false))
                    {
                        measurements.Add(m);
                        log($"[round {round}/{settings.Rounds}] {c.Name,-13} {m.Metric,-20} {m.Value.ToString("0.###", CultureInfo.InvariantCulture),10} {m.Unit}"
                            + (m.RelayCpuSeconds > 0 ? $"  relay CPU {m.RelayCpuSeconds:0.00} s" : ""));
                    }
                }
                catch (BenchException e)
                {
                    errors.Add(new MeasurementError(round, c.Name, tool.Name, e.Message));
                    log($"[round {round}/{settings.Rounds}] {c.Name} {tool.Name}: FAILED {e.Message}");
                }
            }
        }
        catch (BenchException e)
        {
            errors.Add(new MeasurementError(round, c.Name, "start", e.Message));
            log($"[round {round}/{settings.Rounds}] {c.Name}: did not start: {e.Message}");
        }
        finally
        {
            await TryAsync(() => c.StopAsync(context)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Every program of the run inherits the bench's descriptor limit. The idle tool's client and server hold a
    /// socket per connection each, and so does each router on the path (and an agent that relays a program
    /// without the shim): more than a login's usual limit. Raise the soft limit as far as this process may (as
    /// root, beyond the hard limit too, unless a container forbids it), and say so when it stays short.
    /// </summary>
    private void RaiseOpenFileLimit(List<string> notes)
    {
        const ulong Wanted = 1 << 20;
        if (Isthmus.Core.Native.Libc.GetRLimit(Isthmus.Core.Native.Libc.RLimitNoFile, out var limit) != 0 || limit.Current >= Wanted)
        {
            return;
        }

        var raised = new Isthmus.Core.Native.RLimit { Current = Math.Max(Wanted, limit.Maximum), Maximum = Math.Max(Wanted, limit.Maximum) };
        if (Isthmus.Core.Native.Libc.SetRLimit(Isthmus.Core.Native.Libc.RLimitNoFile, raised) == 0)
        {
            return;
        }

        var errno = Marshal.GetLastPInvokeError();
        var toHard = new Isthmus.Core.Native.RLimit { Current = limit.Maximum, Maximum = limit.Maximum };
        var current = limit.Maximum > limit.Current && Isthmus.Core.Native.Libc.SetRLimit(Isthmus.Core.Native.Libc.RLimitNoFile, toHard) == 0 ? limit.Maximum : limit.Current;
        var needed = (ulong)settings.IdleConnections + 1000;
        if (current < needed)
        {
            var note = $"open-file limit {current} (raising it further failed: errno {errno}); {settings.IdleConnections} idle connections may run out of descriptors";
            notes.Add(note);
            log(note);
        }
    }

    private bool Available(string name, IReadOnlyList<string> requires, List<string> notes)
    {
        var missing = requires.Where(r => Shell.Which(r) is null).ToList();
        if (missing.Count == 0)
        {
            return true;
        }

        var note = $"{name} left out: {string.Join(", ", missing)} not installed";
        notes.Add(note);
        log(note);
        return false;
    }

    private async Task TryAsync(Func<Task> step)
    {
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (Exception e) when (e is BenchException or IOException or InvalidOperationException)
        {
            log($"teardown step failed: {e.Message}");
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public static EnvironmentInfo DescribeEnvironment()
    {
        static string Read(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "";
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? ""
            : "";
        var version = typeof(BenchRunner).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "";
        return new EnvironmentInfo(
            DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture),
            Read("/proc/sys/kernel/osrelease"),
            Environment.ProcessorCount,
            cpu,
            string.Join(' ', Read("/proc/loadavg").Split(' ').Take(3)),
            RuntimeInformation.FrameworkDescription,
            version);
    }
}
