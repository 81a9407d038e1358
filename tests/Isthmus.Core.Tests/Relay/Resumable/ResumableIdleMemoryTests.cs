using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Isthmus.Core.Relay.Trunks;
using Isthmus.Core.Tests.Relay.Trunks;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.Core.Tests.Relay.Resumable;

/// <summary>
/// What an idle relayed stream's resumable sessions cost in managed memory (the performance issue's target is
/// 10,000 idle inter-site connections per router): dialler and acceptor sessions over a carried WAN leg, their
/// programs' connections being trunk streams too (real sockets would need two descriptors per stream), after one
/// byte each way, as a connection that has spoken once and then idles.
/// </summary>
public sealed class ResumableIdleMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public async Task IdleSessionsOverCarriedLegs_CostBoundedManagedMemory_AndStillRelay()
    {
        const int Streams = 2_000;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var stop = new CancellationTokenSource();
        await using var lan = await TrunkPair.StartAsync();
        await using var wan = await TrunkPair.StartAsync();
        var budget = new BufferBudget(ResumableOptions.Default.BufferBudget);
        var programsA = new TrunkStream[Streams];
        var programsB = new TrunkStream[Streams];
        var lanA = new TrunkStream[Streams];
        var lanB = new TrunkStream[Streams];
        var legsD = new TrunkStream[Streams];
        var legsA = new TrunkStream[Streams];
        var runs = new List<Task<SessionEnd>>(2 * Streams);

        for (var i = 0; i < Streams; i++)
        {
            (programsA[i], lanA[i]) = await lan.OpenAsync(timeout.Token);
            (lanB[i], programsB[i]) = await lan.OpenAsync(timeout.Token);
            (legsD[i], legsA[i]) = await wan.OpenAsync(timeout.Token);
        }

        var streamsOnly = GC.GetTotalMemory(forceFullCollection: true);
        for (var i = 0; i < Streams; i++)
        {
            var id = Guid.NewGuid();
            var dialer = new ResumableSession(id, new RelayEndpoint(lanA[i], lanA[i]), ResumableOptions.Default, budget, NullLogger.Instance,
                (_, _) => Task.FromResult(ResumeDial.Failed("test: no resumes")));
            var acceptor = new ResumableSession(id, new RelayEndpoint(lanB[i], lanB[i]), ResumableOptions.Default, budget, NullLogger.Instance, redial: null);
            runs.Add(dialer.RunAsync(new RelayEndpoint(legsD[i], legsD[i]), stop.Token));
            runs.Add(acceptor.RunAsync(new RelayEndpoint(legsA[i], legsA[i]), stop.Token));
        }

        var one = new byte[1];
        for (var i = 0; i < Streams; i++)
        {
            await programsA[i].WriteAsync(new byte[] { 1 }, timeout.Token);
            await programsB[i].ReadExactlyAsync(one, timeout.Token);
            await programsB[i].WriteAsync(new byte[] { 2 }, timeout.Token);
            await programsA[i].ReadExactlyAsync(one, timeout.Token);
            Assert.Equal(2, one[0]);
        }

        // Let the delayed Acks go out (20 ms), so the sessions wait as idle ones do; the figure does not depend on it.
        await Task.Delay(TimeSpan.FromMilliseconds(500), timeout.Token);
        var idle = GC.GetTotalMemory(forceFullCollection: true);
        var perStream = (idle - streamsOnly) / (double)Streams;
        output.WriteLine($"{Streams} idle relayed streams: {idle - streamsOnly} bytes managed for their two sessions beyond the trunk streams, " +
            $"{perStream:F0} bytes per stream (dialler + acceptor), {perStream / 2:F0} per router");
        Assert.All(runs, run => Assert.False(run.IsCompleted));
        Assert.True(perStream < 32 * 1024, $"{perStream:F0} bytes per idle stream");

        // Still relaying after the idle time.
        await programsA[^1].WriteAsync(new byte[] { 3 }, timeout.Token);
        await programsB[^1].ReadExactlyAsync(one, timeout.Token);
        Assert.Equal(3, one[0]);

        await stop.CancelAsync();
        Assert.All(await Task.WhenAll(runs).WaitAsync(timeout.Token), end => Assert.Equal(SessionEnd.Stopped, end));
    }
}
