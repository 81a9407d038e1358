using System.Security.Cryptography;
using Isthmus.Core.Relay.Trunks;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Trunks;

/// <summary>Per-stream credit: a reader that does not read stops its own sender, not the trunk.</summary>
public sealed class TrunkFlowControlTests
{
    private static readonly TrunkOptions SmallWindow = new() { InitialWindow = 256 * 1024 };

    [Fact]
    public async Task SlowReader_BlocksOnlyItsOwnWriter_AndReadingResumesIt()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync(SmallWindow);
        var (stalledClient, stalledServer) = await pair.OpenAsync(timeout.Token);
        var (busyClient, busyServer) = await pair.OpenAsync(timeout.Token);

        // One window plus more: the write cannot complete before the server reads (nothing grants credit).
        var stalledPayload = RandomNumberGenerator.GetBytes(SmallWindow.InitialWindow + 100_000);
        var stalledWrite = stalledClient.WriteAsync(stalledPayload, timeout.Token).AsTask();

        // Meanwhile another stream moves four windows each way.
        var up = RandomNumberGenerator.GetBytes(4 * SmallWindow.InitialWindow);
        var down = RandomNumberGenerator.GetBytes(4 * SmallWindow.InitialWindow);
        var sending = Task.WhenAll(
            Task.Run(async () => { await busyClient.WriteAsync(up, timeout.Token); busyClient.ShutdownSend(); }),
            Task.Run(async () => { await busyServer.WriteAsync(down, timeout.Token); busyServer.ShutdownSend(); }));
        var receivedUp = TrunkPair.ReadToEndAsync(busyServer, timeout.Token);
        var receivedDown = TrunkPair.ReadToEndAsync(busyClient, timeout.Token);
        await sending;
        Assert.Equal(up, await receivedUp);
        Assert.Equal(down, await receivedDown);

        // A round trip on a third stream after all that: everything sent before it has arrived.
        var (probeClient, probeServer) = await pair.OpenAsync(timeout.Token);
        await probeClient.WriteAsync(new byte[] { 1 }, timeout.Token);
        Assert.Equal(1, await probeServer.ReadAsync(new byte[1], timeout.Token));
        await probeServer.WriteAsync(new byte[] { 2 }, timeout.Token);
        Assert.Equal(1, await probeClient.ReadAsync(new byte[1], timeout.Token));

        Assert.False(stalledWrite.IsCompleted, "a write beyond the window completed although nothing was read");
        Assert.True(pair.Client.IsAlive && pair.Server.IsAlive);

        // Reading resumes the writer, and every byte arrives.
        var stalledReceived = TrunkPair.ReadToEndAsync(stalledServer, timeout.Token);
        await stalledWrite;
        stalledClient.ShutdownSend();
        Assert.Equal(stalledPayload, await stalledReceived);
    }

    [Fact]
    public async Task ManySmallWrites_WithReaderReadingSlowly_ArriveInOrder()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync(new TrunkOptions { InitialWindow = 4096, MaxFrameData = 1024, WriteBatch = 4096 });
        var (client, server) = await pair.OpenAsync(timeout.Token);
        var payload = RandomNumberGenerator.GetBytes(300_000);
        var writing = Task.Run(async () =>
        {
            await TrunkPair.WriteChunkedAsync(client, payload, 700, timeout.Token);
            client.ShutdownSend();
        });
        using var received = new MemoryStream();
        var buffer = new byte[333];
        int n;
        while ((n = await server.ReadAsync(buffer, timeout.Token)) > 0)
        {
            received.Write(buffer, 0, n);
        }

        await writing;
        Assert.Equal(payload, received.ToArray());
    }
}
