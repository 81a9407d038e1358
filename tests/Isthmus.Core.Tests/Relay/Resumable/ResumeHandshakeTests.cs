using System.Net.Sockets;
using Isthmus.Core.Relay.Resumable;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Resumable;

/// <summary>
/// The resume handshake on real sockets, at every point a broken leg can leave the receiver: after 0, 1, …,
/// N bytes, and after the FIN (everything). Each case: the program writes N bytes and its FIN, the first
/// leg is cut once the receiver has delivered exactly k units, the dialer re-dials, both exchange counts,
/// and each resends exactly what the other lacks: the receiving program gets the bytes once, in order, then
/// EOF, and never a reset.
/// </summary>
public sealed class ResumeHandshakeTests
{
    private const int Length = 48;

    public static TheoryData<long> EveryPoint()
    {
        var points = new TheoryData<long>();
        for (long k = 0; k <= Length + 1; k++)
        {
            points.Add(k);
        }

        return points;
    }

    [Theory]
    [MemberData(nameof(EveryPoint))]
    public async Task DialerToAcceptor_CutAfterKUnits_ResumesExactly(long k)
    {
        await using var h = await ResumableHarness.StartAsync((nearDialer, nearAcceptor) => new CuttingProxy(nearDialer, nearAcceptor, k));
        var data = Bytes.Pattern(Length, 7);
        var reply = Bytes.Pattern(1000, 3);
        await h.ProgramA.SendAsync(data);
        h.ProgramA.Shutdown(SocketShutdown.Send);

        Assert.Equal(data, await LoopbackSockets.ReadToEndAsync(h.ProgramB));
        await h.ProgramB.SendAsync(reply);
        h.ProgramB.Shutdown(SocketShutdown.Send);
        Assert.Equal(reply, await LoopbackSockets.ReadToEndAsync(h.ProgramA));

        Assert.Equal(SessionEnd.Completed, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(SessionEnd.Completed, await h.AcceptorRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(1, h.Dialer.Resumes);
        Assert.Equal(k, h.Dialer.LastPeerReceived); // the acceptor said it had exactly k units
        Assert.Equal(0, h.Budget.Held);
    }

    [Theory]
    [MemberData(nameof(EveryPoint))]
    public async Task AcceptorToDialer_CutAfterKUnits_ResumesExactly(long k)
    {
        await using var h = await ResumableHarness.StartAsync((nearDialer, nearAcceptor) => new CuttingProxy(nearAcceptor, nearDialer, k));
        var data = Bytes.Pattern(Length, 11);
        var reply = Bytes.Pattern(777, 5);
        await h.ProgramB.SendAsync(data);
        h.ProgramB.Shutdown(SocketShutdown.Send);

        Assert.Equal(data, await LoopbackSockets.ReadToEndAsync(h.ProgramA));
        await h.ProgramA.SendAsync(reply);
        h.ProgramA.Shutdown(SocketShutdown.Send);
        Assert.Equal(reply, await LoopbackSockets.ReadToEndAsync(h.ProgramB));

        Assert.Equal(SessionEnd.Completed, await h.DialerRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(SessionEnd.Completed, await h.AcceptorRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(1, h.Acceptor.Resumes);
        Assert.Equal(k, h.Acceptor.LastPeerReceived); // the dialer said it had exactly k units
    }
}
