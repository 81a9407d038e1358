using Isthmus.Core.Relay.Resumable;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Resumable;

/// <summary>The auto-reset wake-up of a resumable stream's loops: behaviour only, no timing assertions.</summary>
public sealed class AsyncSignalTests
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task SetBeforeWait_CompletesAtOnce_AndIsConsumed()
    {
        var signal = new AsyncSignal();
        signal.Set();
        signal.Set(); // coalesces with the first
        var wait = signal.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None);
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.True(await wait);

        // Consumed: the next wait times out rather than seeing the old signal.
        Assert.False(await signal.WaitAsync(TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public async Task WaitThenSet_Wakes()
    {
        var signal = new AsyncSignal();
        var wait = signal.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None);
        Assert.False(wait.IsCompleted);
        signal.Set();
        Assert.True(await wait);
    }

    [Fact]
    public async Task Timeout_ReturnsFalse_AndTheSignalStillWorksAfterwards()
    {
        var signal = new AsyncSignal();
        Assert.False(await signal.WaitAsync(TimeSpan.FromMilliseconds(1), CancellationToken.None));
        var wait = signal.WaitAsync(Long, CancellationToken.None);
        signal.Set();
        Assert.True(await wait);
    }

    [Fact]
    public async Task Cancellation_Throws_AndTheSignalStillWorksAfterwards()
    {
        var signal = new AsyncSignal();
        using var cts = new CancellationTokenSource();
        var wait = signal.WaitAsync(Timeout.InfiniteTimeSpan, cts.Token);
        Assert.False(wait.IsCompleted);
        await cts.CancelAsync();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await wait);
        Assert.Equal(cts.Token, e.CancellationToken);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await signal.WaitAsync(Timeout.InfiniteTimeSpan, cts.Token));
        signal.Set();
        Assert.True(await signal.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None));
    }

    [Fact]
    public async Task SetDuringAWaitThatTimesOut_IsNotLost()
    {
        // Whichever ends the wait, timeout or Set, a Set is seen by this wait or the next one.
        var signal = new AsyncSignal();
        for (var i = 0; i < 2_000; i++)
        {
            var wait = signal.WaitAsync(TimeSpan.FromMilliseconds(1), CancellationToken.None);
            signal.Set();
            if (!await wait)
            {
                Assert.True(await signal.WaitAsync(TimeSpan.Zero, CancellationToken.None));
            }
        }
    }

    [Fact]
    public async Task ManySetsFromOtherThreads_EveryStateChangeIsSeen()
    {
        // The waiter's protocol: change state, then Set; the waiter re-checks state after each wake-up.
        const int Count = 100_000;
        var signal = new AsyncSignal();
        var produced = 0;
        var producers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < Count / 4; i++)
            {
                Interlocked.Increment(ref produced);
                signal.Set();
            }
        })).ToArray();

        using var timeout = new CancellationTokenSource(Long);
        while (Volatile.Read(ref produced) < Count)
        {
            await signal.WaitAsync(Timeout.InfiniteTimeSpan, timeout.Token);
        }

        await Task.WhenAll(producers);
        Assert.Equal(Count, produced);
    }

    [Fact]
    public async Task Made_IsMadeOnce_AndSetIfMadeReachesItsWaiter()
    {
        AsyncSignal? field = null;
        AsyncSignal.SetIfMade(ref field); // nobody waits yet: nothing to do
        Assert.Null(field);

        var signal = AsyncSignal.Made(ref field);
        Assert.Same(signal, AsyncSignal.Made(ref field));
        var wait = signal.WaitAsync(Long, CancellationToken.None);
        AsyncSignal.SetIfMade(ref field);
        Assert.True(await wait);
    }
}
