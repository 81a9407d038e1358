using System.Net.Sockets;
using Isthmus.Core.Relay;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Isthmus.Core.Tests.Relay;

public sealed class HandshakeGuardTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_full_guard_shuts_down_the_oldest_pending_connection()
    {
        var time = new FakeTimeProvider();
        using var guard = new HandshakeGuard(maxPending: 2, deadline: TimeSpan.FromHours(1), time);
        var pairs = new List<(Socket Outer, Socket Inner)>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                pairs.Add(await LoopbackSockets.PairAsync());
            }

            var first = guard.Admit(pairs[0].Inner);
            using var second = guard.Admit(pairs[1].Inner);
            time.Advance(guard.EvictableAfter);
            using var third = guard.Admit(pairs[2].Inner);

            Assert.True(first.WasShutDown);
            Assert.False(second.WasShutDown);
            Assert.Equal(1, guard.Evicted);
            Assert.Equal(2, guard.Pending);
            using var wait = new CancellationTokenSource(Generous);
            Assert.Equal(0, await pairs[0].Outer.ReceiveAsync(new byte[1], SocketFlags.None, wait.Token)); // the peer sees our FIN
            first.Dispose();
            Assert.Equal(2, guard.Pending);
        }
        finally
        {
            foreach (var (outer, inner) in pairs)
            {
                outer.Dispose();
                inner.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_burst_of_young_connections_passes_the_limit_up_to_the_burst_bound_then_the_oldest_goes()
    {
        using var guard = new HandshakeGuard(maxPending: 2, deadline: TimeSpan.FromHours(1), new FakeTimeProvider());
        var count = (2 * HandshakeGuard.BurstFactor) + 1;
        var pairs = new List<(Socket Outer, Socket Inner)>();
        var admitted = new List<PendingHandshake>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                pairs.Add(await LoopbackSockets.PairAsync());
                admitted.Add(guard.Admit(pairs[i].Inner));
            }

            // No time passed: the first 2 x BurstFactor stay, the one past the bound pushed out the oldest.
            Assert.Equal(1, guard.Evicted);
            Assert.True(admitted[0].WasShutDown);
            Assert.All(admitted.Skip(1), p => Assert.False(p.WasShutDown));
            Assert.Equal(2 * HandshakeGuard.BurstFactor, guard.Pending);
        }
        finally
        {
            admitted.ForEach(p => p.Dispose());
            foreach (var (outer, inner) in pairs)
            {
                outer.Dispose();
                inner.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_connection_pending_past_the_deadline_is_shut_down()
    {
        var time = new FakeTimeProvider();
        using var guard = new HandshakeGuard(maxPending: 8, deadline: TimeSpan.FromSeconds(10), time);
        var (outer, inner) = await LoopbackSockets.PairAsync();
        using (outer)
        using (inner)
        {
            using var pending = guard.Admit(inner);
            time.Advance(TimeSpan.FromSeconds(9));
            Assert.False(pending.WasShutDown);
            time.Advance(TimeSpan.FromSeconds(2));
            Assert.True(pending.WasShutDown);
            Assert.Equal(1, guard.TimedOut);
            Assert.Equal(0, guard.Pending);

            // The handler's read ends with end-of-stream, as for a peer that closed.
            Assert.Equal(0, await inner.ReceiveAsync(new byte[1], SocketFlags.None));
            using var wait = new CancellationTokenSource(Generous);
            Assert.Equal(0, await outer.ReceiveAsync(new byte[1], SocketFlags.None, wait.Token));
        }
    }

    [Fact]
    public async Task An_authenticated_connection_has_no_deadline_and_frees_its_slot()
    {
        var time = new FakeTimeProvider();
        using var guard = new HandshakeGuard(maxPending: 1, deadline: TimeSpan.FromSeconds(10), time);
        var (outer, inner) = await LoopbackSockets.PairAsync();
        var (outer2, inner2) = await LoopbackSockets.PairAsync();
        using (outer)
        using (inner)
        using (outer2)
        using (inner2)
        {
            var pending = guard.Admit(inner);
            pending.Authenticated();
            using var next = guard.Admit(inner2);
            Assert.False(pending.WasShutDown);
            Assert.Equal(0, guard.Evicted);
            next.Authenticated();
            time.Advance(TimeSpan.FromHours(1));
            Assert.False(pending.WasShutDown);
            Assert.False(next.WasShutDown);
            Assert.Equal(0, guard.TimedOut);

            // Both still carry bytes.
            await outer.SendAsync(new byte[] { 7 }, SocketFlags.None);
            var one = new byte[1];
            Assert.Equal(1, await inner.ReceiveAsync(one, SocketFlags.None));
            Assert.Equal(7, one[0]);
        }
    }
}
