using System.Net.Sockets;
using System.Security.Cryptography;
using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Resumable;

/// <summary>Resumable sessions on real sockets: bulk data, resets, refused resumes, outage limit, bounded buffers, replays.</summary>
public sealed class ResumableSessionTests
{
    /// <summary>A proxy that never cuts (the metered direction forwards "forever" within the test).</summary>
    private static CuttingProxy Never(Socket nearDialer, Socket nearAcceptor) => new(nearDialer, nearAcceptor, long.MaxValue);

    [Fact]
    public async Task BulkBothWays_CutInTheMiddle_ByteExact()
    {
        var up = RandomNumberGenerator.GetBytes(24 << 20);
        var down = RandomNumberGenerator.GetBytes(5 << 20);
        await using var h = await ResumableHarness.StartAsync((a, b) => new CuttingProxy(a, b, 7_654_321));
        var readB = LoopbackSockets.ReadToEndAsync(h.ProgramB);
        var readA = LoopbackSockets.ReadToEndAsync(h.ProgramA);
        var sendA = Task.Run(async () =>
        {
            await h.ProgramA.SendAsync(up);
            h.ProgramA.Shutdown(SocketShutdown.Send);
        });
        await h.ProgramB.SendAsync(down);
        h.ProgramB.Shutdown(SocketShutdown.Send);
        await sendA;

        Assert.Equal(up, await readB);
        Assert.Equal(down, await readA);
        Assert.Equal(SessionEnd.Completed, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(SessionEnd.Completed, await h.AcceptorRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(1, h.Dialer.Resumes);
        Assert.Equal(0, h.Budget.Held);
    }

    [Fact]
    public async Task ProgramReset_ReachesTheOtherProgramAsReset()
    {
        await using var h = await ResumableHarness.StartAsync(Never);
        await h.ProgramA.SendAsync(new byte[] { 1, 2, 3 });
        var got = new byte[3];
        Assert.Equal(3, await h.ProgramB.ReceiveAsync(got));
        h.ProgramA.LingerState = new LingerOption(true, 0);
        h.ProgramA.Close();

        await AssertResetAsync(h.ProgramB);
        Assert.Equal(SessionEnd.LocalReset, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(SessionEnd.PeerReset, await h.AcceptorRun.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task ResumeRefused_UnknownStream_ResetsTheProgram()
    {
        // What the surviving router sees after its peer restarted: the resume is answered "unknown stream".
        await using var h = await ResumableHarness.StartAsync((a, b) => new CuttingProxy(a, b, 2));
        h.AcceptResumes = false;
        await h.ProgramA.SendAsync(new byte[] { 1, 2, 3, 4 });

        await AssertResetAsync(h.ProgramA);
        Assert.Equal(SessionEnd.PeerLost, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task OutageLongerThanTheMaximum_ResetsBothPrograms()
    {
        var options = ResumableHarness.TestOptions with { OutageMax = TimeSpan.FromMilliseconds(800) };
        await using var h = await ResumableHarness.StartAsync((a, b) => new CuttingProxy(a, b, 1), options);
        h.Unreachable = true;
        var acceptorEnd = h.AcceptorRun;
        await h.ProgramA.SendAsync(new byte[] { 9, 9 });

        await AssertResetAsync(h.ProgramB);
        await AssertResetAsync(h.ProgramA);
        Assert.Equal(SessionEnd.OutageTooLong, await acceptorEnd.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(SessionEnd.OutageTooLong, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task PeerRestarted_EndsAcceptedStreamAtOnce()
    {
        await using var h = await ResumableHarness.StartAsync(Never);
        var streams = new ResumableStreams(h.Options);
        streams.Add(h.Acceptor, "a", epoch: 41);
        streams.PeerEpoch("a", 41); // the same instance: nothing happens
        await h.ProgramA.SendAsync(new byte[] { 5 });
        var one = new byte[1];
        Assert.Equal(1, await h.ProgramB.ReceiveAsync(one));

        streams.PeerEpoch("a", 42);

        await AssertResetAsync(h.ProgramB);
        Assert.Equal(SessionEnd.PeerLost, await h.AcceptorRun.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task ResumeHeaderNotNewerThanTheLast_IsRefused()
    {
        await using var h = await ResumableHarness.StartAsync(Never);
        var (mine, theirs) = await LoopbackSockets.PairAsync();
        using (mine)
        {
            var fresh = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 5000;
            Assert.True(h.Acceptor.TryOffer(new RelayEndpoint(theirs), 0, fresh));
            var (_, replayed) = await LoopbackSockets.PairAsync();
            Assert.False(h.Acceptor.TryOffer(new RelayEndpoint(replayed), 0, fresh));
            Assert.False(h.Acceptor.TryOffer(new RelayEndpoint(replayed), 0, fresh - 1));
            replayed.Dispose();
        }
    }

    [Fact]
    public async Task LegDown_ProgramKeepsWriting_BufferStaysBounded_NothingLost()
    {
        // Cut after 1 byte and refuse resumes for a while: program A keeps writing 48 MiB (more than the
        // kernel's socket buffers hold) into a 1 MiB stream buffer.
        await using var h = await ResumableHarness.StartAsync((a, b) => new CuttingProxy(a, b, 1));
        h.Unreachable = true;
        var options = h.Options;
        var data = RandomNumberGenerator.GetBytes(48 << 20);
        var readB = LoopbackSockets.ReadToEndAsync(h.ProgramB);
        var sending = Task.Run(async () =>
        {
            await h.ProgramA.SendAsync(data);
            h.ProgramA.Shutdown(SocketShutdown.Send);
        });
        long peak = 0;
        var until = DateTime.UtcNow.AddSeconds(2);
        while (DateTime.UtcNow < until)
        {
            peak = Math.Max(peak, h.Dialer.Buffered);
            await Task.Delay(20);
        }

        Assert.False(sending.IsCompleted); // the program is flow-controlled, not buffered without bound
        Assert.InRange(peak, 1, options.StreamBuffer + StreamRelay.BufferSize);
        h.Unreachable = false;

        await sending.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(data, await readB.WaitAsync(TimeSpan.FromSeconds(60)));
        h.ProgramB.Shutdown(SocketShutdown.Send);
        Assert.Empty(await LoopbackSockets.ReadToEndAsync(h.ProgramA));
        Assert.Equal(SessionEnd.Completed, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task LegDown_SpoolOn_ProgramWritesOnPastTheMemoryBound_NothingLost()
    {
        // As above, with a spool: the program's 48 MiB are all accepted while the leg is down (memory holds at
        // most the 1 MiB bound, the rest is in the spool file), then delivered exactly after the resume.
        using var mount = TmpfsMount.Create(64 << 20);
        var spool = new Spool(mount.Path, 64 << 20, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        await using var h = await ResumableHarness.StartAsync((a, b) => new CuttingProxy(a, b, 1), spool: spool);
        h.Unreachable = true;
        var data = RandomNumberGenerator.GetBytes(48 << 20);
        var readB = LoopbackSockets.ReadToEndAsync(h.ProgramB);
        long peakMemory = 0;
        var sending = Task.Run(async () =>
        {
            await h.ProgramA.SendAsync(data);
            h.ProgramA.Shutdown(SocketShutdown.Send);
        });
        while (!sending.IsCompleted && !h.DialerRun.IsCompleted)
        {
            peakMemory = Math.Max(peakMemory, h.Dialer.Buffered);
            await Task.WhenAny(sending, Task.Delay(5));
        }

        await sending; // completed while the leg was still down: not flow-controlled
        Assert.True(h.Unreachable);
        Assert.InRange(peakMemory, 0, h.Options.StreamBuffer + StreamRelay.BufferSize);
        // The kernel's socket buffers (a few MiB) may still hold the end; the session takes it into the spool.
        for (var i = 0; i < 600 && h.Dialer.Spooled < (32 << 20); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(h.Dialer.Spooled >= 32 << 20, $"spooled {h.Dialer.Spooled}");
        Assert.InRange(spool.Used, h.Dialer.Spooled, h.Dialer.Spooled + StreamRelay.BufferSize); // plus the next read's reservation
        h.Unreachable = false;

        Assert.Equal(data, await readB.WaitAsync(TimeSpan.FromSeconds(60)));
        h.ProgramB.Shutdown(SocketShutdown.Send);
        Assert.Empty(await LoopbackSockets.ReadToEndAsync(h.ProgramA));
        Assert.Equal(SessionEnd.Completed, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, spool.Used);
        Assert.Equal(0, mount.Used);
    }

    private static async Task AssertResetAsync(Socket socket)
    {
        var error = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
            {
            }
        });
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
    }
}
