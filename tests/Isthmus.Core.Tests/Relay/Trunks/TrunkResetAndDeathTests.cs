using System.Net.Sockets;
using Isthmus.Core.Relay.Trunks;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Trunks;

/// <summary>Resets of one stream, the stream limit, and the death of the whole trunk.</summary>
public sealed class TrunkResetAndDeathTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Reset_FailsThePeersPendingReadAndWrite(bool clientResets)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var options = new TrunkOptions { InitialWindow = 64 * 1024 };
        await using var pair = await TrunkPair.StartAsync(options);
        var (client, server) = await pair.OpenAsync(timeout.Token);
        var (resetting, peer) = clientResets ? (client, server) : (server, client);

        // The peer waits to read, and waits with a write beyond the window nobody reads.
        var peerRead = peer.ReadAsync(new byte[100], timeout.Token).AsTask();
        var peerWrite = peer.WriteAsync(new byte[options.InitialWindow + 1], timeout.Token).AsTask();
        Assert.False(peerWrite.IsCompleted);

        resetting.Abort();

        var readError = await Assert.ThrowsAsync<IOException>(() => peerRead);
        Assert.Equal("stream reset by peer", readError.Message);
        var writeError = await Assert.ThrowsAsync<IOException>(() => peerWrite);
        Assert.Equal("stream reset by peer", writeError.Message);
        await Assert.ThrowsAsync<IOException>(async () => await peer.WriteAsync(new byte[1], timeout.Token));
        var ownError = await Assert.ThrowsAsync<IOException>(async () => _ = await resetting.ReadAsync(new byte[100], timeout.Token));
        Assert.Equal("stream aborted locally", ownError.Message);
        Assert.Equal(0, resetting == client ? pair.Client.StreamCount : pair.Server.StreamCount);
        Assert.Equal(0, peer == client ? pair.Client.StreamCount : pair.Server.StreamCount);

        // The trunk lives on.
        var (next, nextAccepted) = await pair.OpenAsync(timeout.Token);
        await next.WriteAsync(new byte[] { 42 }, timeout.Token);
        var one = new byte[1];
        Assert.Equal(1, await nextAccepted.ReadAsync(one, timeout.Token));
        Assert.Equal(42, one[0]);
    }

    /// <summary>
    /// A router answers a leg it refuses (a leg reply) and aborts it at once: the reply is written before the Reset,
    /// so the peer reads it whole, and only then sees the reset (as TCP delivers data that came before a RST).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BytesSentBeforeAReset_AreReadFirst_ThenTheReadFails(bool dispose)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync();
        var (client, server) = await pair.OpenAsync(timeout.Token);
        var reply = new byte[] { 0x49, 0x53, 0x54, 0x52, 1, 0, 0, 0 };
        await server.WriteAsync(reply, timeout.Token);
        if (dispose)
        {
            await server.DisposeAsync();
        }
        else
        {
            server.Abort();
        }

        var got = new byte[reply.Length];
        var read = 0;
        while (read < got.Length)
        {
            var n = await client.ReadAsync(got.AsMemory(read), timeout.Token);
            Assert.True(n > 0, "end of stream before the bytes sent ahead of the reset");
            read += n;
        }

        Assert.Equal(reply, got);
        var error = await Assert.ThrowsAsync<IOException>(async () => _ = await client.ReadAsync(new byte[1], timeout.Token));
        Assert.Equal("stream reset by peer", error.Message);
    }

    [Fact]
    public async Task DisposeBeforeThePeersFin_ResetsThePeer_AfterItIsClean()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync();
        var (client, server) = await pair.OpenAsync(timeout.Token);
        await client.WriteAsync(new byte[] { 1, 2, 3 }, timeout.Token);
        client.Dispose();
        var buffer = new byte[10];
        // Bytes sent before the reset may or may not be read first; the stream then fails with a reset.
        var error = await Assert.ThrowsAsync<IOException>(async () =>
        {
            while (await server.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
        });
        Assert.Equal("stream reset by peer", error.Message);

        (client, server) = await pair.OpenAsync(timeout.Token);
        server.ShutdownSend();
        Assert.Equal(0, await client.ReadAsync(buffer, timeout.Token));
        await client.WriteAsync(new byte[] { 7 }, timeout.Token);
        client.Dispose();
        Assert.Equal(1, await server.ReadAsync(buffer, timeout.Token));
        Assert.Equal(0, await server.ReadAsync(buffer, timeout.Token));
    }

    [Fact]
    public async Task OpenBeyondMaxStreams_IsReset_AndTheTrunkLives()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync(serverOptions: new TrunkOptions { MaxStreams = 2 });
        var (first, firstAccepted) = await pair.OpenAsync(timeout.Token);
        var (second, _) = await pair.OpenAsync(timeout.Token);
        var third = await pair.Client.OpenAsync(timeout.Token);
        await third.WriteAsync(new byte[] { 3 }, timeout.Token);

        var error = await Assert.ThrowsAsync<IOException>(async () => _ = await third.ReadAsync(new byte[1], timeout.Token));
        Assert.Equal("stream reset by peer", error.Message);
        Assert.True(pair.Server.IsAlive);
        Assert.Equal(2, pair.Server.StreamCount);

        await first.WriteAsync(new byte[] { 1 }, timeout.Token);
        Assert.Equal(1, await firstAccepted.ReadAsync(new byte[1], timeout.Token));
        second.Abort();
        first.Abort();

        // Room again: a new stream is accepted.
        var (fourth, fourthAccepted) = await pair.OpenAsync(timeout.Token);
        await fourth.WriteAsync(new byte[] { 4 }, timeout.Token);
        Assert.Equal(1, await fourthAccepted.ReadAsync(new byte[1], timeout.Token));
        Assert.True(pair.Client.IsAlive && pair.Server.IsAlive);
    }

    [Fact]
    public async Task UnderlyingSocketClosed_FailsEveryPendingReadAndWrite_AndTheTrunk()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var options = new TrunkOptions { InitialWindow = 64 * 1024 };
        var pair = await TrunkPair.StartAsync(options);
        var pending = new List<Task>();
        for (var i = 0; i < 3; i++)
        {
            // Reads waiting on streams nobody writes, writes beyond the window on streams nobody reads.
            var (client, server) = await pair.OpenAsync(timeout.Token);
            pending.Add(client.ReadAsync(new byte[10], timeout.Token).AsTask());
            pending.Add(server.ReadAsync(new byte[10], timeout.Token).AsTask());
            (client, server) = await pair.OpenAsync(timeout.Token);
            pending.Add(client.WriteAsync(new byte[options.InitialWindow + 1], timeout.Token).AsTask());
            pending.Add(server.WriteAsync(new byte[options.InitialWindow + 1], timeout.Token).AsTask());
        }

        Assert.All(pending, task => Assert.False(task.IsCompleted));
        pair.ClientSocket.Dispose();

        foreach (var task in pending)
        {
            var error = await Assert.ThrowsAsync<IOException>(() => task);
            Assert.StartsWith("trunk lost: ", error.Message);
        }

        // The server sees the end of the connection, or a reset if the client's kernel still held unread bytes.
        Assert.NotEmpty(await pair.Server.Completion.WaitAsync(timeout.Token));
        Assert.NotEmpty(await pair.Client.Completion.WaitAsync(timeout.Token));
        Assert.False(pair.Client.IsAlive || pair.Server.IsAlive);
        var openError = await Assert.ThrowsAsync<IOException>(async () => await pair.Client.OpenAsync(timeout.Token));
        Assert.StartsWith("trunk lost: ", openError.Message);
        await Assert.ThrowsAsync<IOException>(async () => await pair.Server.AcceptAsync(timeout.Token));
        Assert.Equal(0, pair.Client.StreamCount);
        Assert.Equal(0, pair.Server.StreamCount);
        await pair.DisposeAsync();
    }

    [Fact]
    public async Task SilentPeer_KillsTheTrunk_AfterDeadAfter()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (silent, inner) = await LoopbackSockets.PairAsync();
        using var _ = silent;
        var options = new TrunkOptions { KeepaliveInterval = TimeSpan.FromMilliseconds(100), DeadAfter = TimeSpan.FromMilliseconds(300) };
        await using var trunk = Trunk.StartServer(new NetworkStream(inner, ownsSocket: true), options, NullLogger.Instance);
        var accepting = trunk.AcceptAsync(timeout.Token).AsTask();

        var reason = await trunk.Completion.WaitAsync(timeout.Token);

        Assert.Contains("nothing arrived", reason);
        var error = await Assert.ThrowsAsync<IOException>(() => accepting);
        Assert.Equal($"trunk lost: {reason}", error.Message);
        // It pinged before giving up, and closed the connection.
        var sent = await LoopbackSockets.ReadToEndAsync(silent, timeout.Token);
        Assert.True(sent.Length >= TrunkFrame.HeaderSize + TrunkFrame.PingSize, $"{sent.Length} bytes sent, reason {reason}");
        Assert.Equal((byte)TrunkFrameType.Ping, sent[0]);
    }

    [Fact]
    public async Task IdleTrunk_StaysAlive_ThroughItsKeepalives()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var options = new TrunkOptions { KeepaliveInterval = TimeSpan.FromMilliseconds(50), DeadAfter = TimeSpan.FromSeconds(2) };
        await using var pair = await TrunkPair.StartAsync(options);
        await Task.Delay(TimeSpan.FromSeconds(3), timeout.Token);
        Assert.True(pair.Client.IsAlive, "the client trunk died");
        Assert.True(pair.Server.IsAlive, "the server trunk died");
        var (client, server) = await pair.OpenAsync(timeout.Token);
        await client.WriteAsync(new byte[] { 1 }, timeout.Token);
        Assert.Equal(1, await server.ReadAsync(new byte[1], timeout.Token));
    }
}
