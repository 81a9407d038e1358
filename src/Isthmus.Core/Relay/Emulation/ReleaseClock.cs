using System.Diagnostics;
using Isthmus.Core.Native;

namespace Isthmus.Core.Relay.Emulation;

/// <summary>
/// Wakes waiters at <see cref="Stopwatch"/> timestamps with sub-millisecond precision, on one dedicated thread
/// for all of a router's emulated connections. .NET's timers and waits round up to whole milliseconds (a 2.5 ms
/// delay would become ~3.5 ms); this thread waits with a millisecond wait until ~1.5 ms before the earliest
/// deadline, then sleeps the rest with clock_nanosleep. Waiters continue on this thread (their socket send is
/// one non-blocking syscall; a full socket buffer makes it finish later on the thread pool): measured on a
/// loaded 2-core VM, a hop through the thread pool added ~1 ms to every release. On a loaded host this thread
/// itself wakes late (it waits for a CPU); it keeps a moving average of how late it woke (at most 1 ms) and
/// wakes that much earlier, so releases are on time on average rather than always late by the host's
/// scheduling latency.
/// </summary>
internal sealed class ReleaseClock : IDisposable
{
    private static readonly long NanoSleepBelow = Stopwatch.Frequency * 2 / 1000;
    private static readonly long CoarseMargin = Stopwatch.Frequency * 3 / 2000;
    private static readonly long Slack = Stopwatch.Frequency / 50_000; // 20 µs: not worth a wake-up
    private static readonly long MaxEarly = Stopwatch.Frequency / 1000;

    private readonly PriorityQueue<TaskCompletionSource, long> _waiters = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Lock _lock = new();
    private readonly Thread _thread;
    private volatile bool _stopped;
    private long _early; // the moving average of wake-up lateness, in Stopwatch ticks (only this thread writes it)

    public ReleaseClock()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "isthmus-wan-emulator" };
        _thread.Start();
    }

    /// <summary>Completes at <paramref name="due"/> (a Stopwatch timestamp), at once if it has passed.</summary>
    public Task WaitUntilAsync(long due)
    {
        if (due - Stopwatch.GetTimestamp() <= Slack)
        {
            return Task.CompletedTask;
        }

        var waiter = new TaskCompletionSource();
        bool earliest;
        lock (_lock)
        {
            earliest = !_waiters.TryPeek(out _, out var first) || due < first;
            _waiters.Enqueue(waiter, due);
        }

        if (earliest)
        {
            _wake.Set();
        }

        return waiter.Task;
    }

    private void Run()
    {
        var ready = new List<TaskCompletionSource>();
        while (!_stopped)
        {
            // Reset before looking: a deadline added after the look sets it again, so none is missed.
            _wake.Reset();
            long next;
            lock (_lock)
            {
                var now = Stopwatch.GetTimestamp();
                var measured = false;
                while (_waiters.TryPeek(out var waiter, out var due) && due - now <= Slack + _early)
                {
                    if (!measured)
                    {
                        // How late this wake-up was for the deadline it aimed at (aimed at due - _early): averaged over 8.
                        var late = Math.Clamp(now - (due - _early), 0, MaxEarly);
                        _early = Math.Min(MaxEarly, _early + ((late - _early) / 8));
                        measured = true;
                    }

                    ready.Add(_waiters.Dequeue());
                }

                next = _waiters.TryPeek(out _, out var first) ? first : long.MaxValue;
            }

            foreach (var waiter in ready)
            {
                waiter.TrySetResult();
            }

            ready.Clear();
            if (next == long.MaxValue)
            {
                _wake.Wait();
                continue;
            }

            var left = next - _early - Stopwatch.GetTimestamp();
            if (left > NanoSleepBelow)
            {
                _wake.Wait(TimeSpan.FromTicks((left - CoarseMargin) * TimeSpan.TicksPerSecond / Stopwatch.Frequency));
            }
            else if (left > 0)
            {
                NanoSleep(left);
            }
        }
    }

    private static unsafe void NanoSleep(long stopwatchTicks)
    {
        var ns = stopwatchTicks * 1_000_000_000 / Stopwatch.Frequency;
        var request = new TimeSpecNative { Seconds = ns / 1_000_000_000, Nanoseconds = ns % 1_000_000_000 };
        _ = Libc.ClockNanosleep(Libc.ClockMonotonic, 0, &request, null);
    }

    public void Dispose()
    {
        _stopped = true;
        _wake.Set();
        _thread.Join(TimeSpan.FromSeconds(1));
        _wake.Dispose();
    }
}
