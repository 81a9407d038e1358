using System.Diagnostics;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>Condition waits with a deadline (instead of fixed sleeps).</summary>
public static class Poll
{
    private static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>Polls <paramref name="condition"/> until true (returns true) or the deadline passes (returns false).</summary>
    public static Task<bool> UntilAsync(Func<bool> condition, TimeSpan timeout, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return UntilAsync(() => Task.FromResult(condition()), timeout, interval);
    }

    /// <summary>Async <paramref name="condition"/>, evaluated at least once, last time at or after the deadline.</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await condition().ConfigureAwait(false))
            {
                return true;
            }

            if (clock.Elapsed >= timeout)
            {
                return false;
            }

            var left = timeout - clock.Elapsed;
            var step = interval ?? DefaultInterval;
            await Task.Delay(left < step ? left : step).ConfigureAwait(false);
        }
    }

    /// <summary>Like <see cref="UntilAsync(Func{Task{bool}}, TimeSpan, TimeSpan?)"/> but throws <see cref="TimeoutException"/> naming <paramref name="what"/>.</summary>
    public static async Task AssertAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        if (!await UntilAsync(condition, timeout, interval).ConfigureAwait(false))
        {
            throw new TimeoutException($"not true within {timeout.TotalSeconds:0.###} s: {what}");
        }
    }
}
