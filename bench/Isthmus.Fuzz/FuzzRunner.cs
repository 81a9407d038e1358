using System.Collections.Concurrent;
using System.Diagnostics;
using CsCheck;

namespace Isthmus.Fuzz;

/// <summary>What one run of a target did.</summary>
public sealed record FuzzResult(string Target, long Executions, TimeSpan Elapsed, TimeSpan SlowestInput, string? Failure);

/// <summary>
/// Runs a target through CsCheck (seeded, one thread, shrinking a failing input to a small one) and adds the
/// invariants every parser shares: nothing but the target's own assertions may throw, allocation stays in
/// the target's budget, and a watchdog ends the process with the input if one input runs for 30 s (a hang).
/// </summary>
public static class FuzzRunner
{
    public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(30);
    private const long MinimumBudget = 64 << 10;
    private static readonly ConcurrentDictionary<int, (long Start, string Target, byte[] Input)> Running = new();
    private static readonly Lazy<Thread> Watchdog = new(StartWatchdog);

    /// <summary>Runs <paramref name="target"/> for <paramref name="iterations"/> inputs, or for <paramref name="duration"/> if given.</summary>
    /// <param name="seed">A CsCheck seed (printed with every failure) to replay a run; null for a random one.</param>
    public static FuzzResult Run(FuzzTarget target, long iterations, TimeSpan? duration = null, string? seed = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        _ = Watchdog.Value;
        long executions = 0;
        long slowest = 0;
        var started = Stopwatch.GetTimestamp();
        string? failure = null;
        try
        {
            target.Input.Sample(
                input =>
                {
                    var elapsed = CheckOne(target, input);
                    executions++;
                    slowest = Math.Max(slowest, elapsed);
                },
                writeLine: log,
                seed: seed,
                iter: duration is null ? iterations : long.MaxValue,
                time: duration is null ? -1 : (int)Math.Ceiling(duration.Value.TotalSeconds),
                threads: 1,
                print: Print);
        }
        catch (Exception e)
        {
            failure = e.InnerException is { } inner ? $"{e.Message}\n{inner.Message}" : e.Message;
        }

        return new FuzzResult(target.Name, executions, Stopwatch.GetElapsedTime(started), Stopwatch.GetElapsedTime(0, slowest), failure);
    }

    /// <summary>One input through one target with the shared invariants; returns its duration in ticks.</summary>
    public static long CheckOne(FuzzTarget target, byte[] input)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(input);
        var thread = Environment.CurrentManagedThreadId;
        var start = Stopwatch.GetTimestamp();
        Running[thread] = (start, target.Name, input);
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            target.Check(input);
        }
        catch (FuzzFailureException)
        {
            throw;
        }
        catch (Exception e)
        {
            throw new FuzzFailureException($"{target.Name}: {e.GetType().FullName} escaped the parser: {e.Message}\n{e.StackTrace}");
        }
        finally
        {
            Running.TryRemove(thread, out _);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        // The floor absorbs the runtime's own allocations on this thread (JIT, tiering, type loading).
        if (target.AllocationBudget is { } budget && allocated > Math.Max(MinimumBudget, budget(input.Length)))
        {
            throw new FuzzFailureException($"{target.Name}: allocated {allocated} bytes for a {input.Length}-byte input (budget {budget(input.Length)})");
        }

        return Stopwatch.GetTimestamp() - start;
    }

    public static string Print(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var shown = Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 256)));
        return $"{input.Length} bytes: {shown}{(input.Length > 256 ? "..." : "")}";
    }

    private static Thread StartWatchdog()
    {
        var thread = new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(1000);
                foreach (var (_, (start, name, input)) in Running)
                {
                    if (Stopwatch.GetElapsedTime(start) > HangLimit)
                    {
                        Environment.FailFast($"fuzz target {name} hung for {HangLimit.TotalSeconds} s on input {Print(input)}");
                    }
                }
            }
        })
        { IsBackground = true, Name = "fuzz watchdog" };
        thread.Start();
        return thread;
    }
}
