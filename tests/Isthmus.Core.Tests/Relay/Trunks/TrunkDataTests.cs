using System.Security.Cryptography;
using Isthmus.Core.Relay.Trunks;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Trunks;

/// <summary>Bytes arrive exactly, in order, with half-closes, on one stream and on many at once.</summary>
public sealed class TrunkDataTests
{
    [Fact]
    public async Task OneStream_SeveralMiB_BothWaysAtOnce_ArriveExactly()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync();
        var (client, server) = await pair.OpenAsync(timeout.Token);
        var up = RandomNumberGenerator.GetBytes(6 * 1024 * 1024 + 17);
        var down = RandomNumberGenerator.GetBytes(5 * 1024 * 1024 + 3);

        var sendUp = Task.Run(async () =>
        {
            await TrunkPair.WriteChunkedAsync(client, up, 200_000, timeout.Token);
            client.ShutdownSend();
        });
        var sendDown = Task.Run(async () =>
        {
            await TrunkPair.WriteChunkedAsync(server, down, 70_000, timeout.Token);
            server.ShutdownSend();
        });
        var receivedUp = TrunkPair.ReadToEndAsync(server, timeout.Token);
        var receivedDown = TrunkPair.ReadToEndAsync(client, timeout.Token);
        await Task.WhenAll(sendUp, sendDown, receivedUp, receivedDown);

        Assert.Equal(SHA256.HashData(up), SHA256.HashData(await receivedUp));
        Assert.Equal(SHA256.HashData(down), SHA256.HashData(await receivedDown));
        client.Dispose();
        server.Dispose();
        Assert.Equal(0, pair.Client.StreamCount);
        Assert.Equal(0, pair.Server.StreamCount);
        Assert.True(pair.Client.IsAlive && pair.Server.IsAlive);
    }

    [Fact]
    public async Task HundredConcurrentStreams_OfDifferentSizes_EchoExactly()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var pair = await TrunkPair.StartAsync();
        const int Streams = 100;
        var echoes = new List<Task>();
        var accepting = Task.Run(async () =>
        {
            for (var i = 0; i < Streams; i++)
            {
                var stream = await pair.Server.AcceptAsync(timeout.Token);
                echoes.Add(Task.Run(() => EchoAsync(stream, timeout.Token)));
            }
        });

        var clients = Enumerable.Range(0, Streams).Select(i => Task.Run(async () =>
        {
            var payload = RandomNumberGenerator.GetBytes(i == 0 ? 0 : i % 10 == 0 ? 1 : RandomNumberGenerator.GetInt32(1, 600_000));
            await using var stream = await pair.Client.OpenAsync(timeout.Token);
            var back = TrunkPair.ReadToEndAsync(stream, timeout.Token);
            await TrunkPair.WriteChunkedAsync(stream, payload, 20_000, timeout.Token);
            stream.ShutdownSend();
            Assert.Equal(payload, await back);
        })).ToArray();

        await Task.WhenAll(clients);
        await accepting;
        await Task.WhenAll(echoes);
        Assert.Equal(0, pair.Client.StreamCount);
        Assert.Equal(0, pair.Server.StreamCount);
    }

    /// <summary>
    /// Opens from many threads at once (a burst of connections): every Open reaches the server in id order (a
    /// lower id after a higher one kills the trunk), so every stream is accepted and the trunk lives. This once
    /// killed trunks in CI under load: an id was taken, then another thread's stream was queued first.
    /// </summary>
    [Fact]
    public async Task ConcurrentOpens_FromManyThreads_AreAllAccepted_AndTheTrunkLives()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var pair = await TrunkPair.StartAsync();
        const int threads = 8, perThread = 500;
        var accepted = Task.Run(async () =>
        {
            var ids = new List<uint>();
            for (var i = 0; i < threads * perThread; i++)
            {
                ids.Add((await pair.Server.AcceptAsync(timeout.Token)).Id);
            }

            return ids;
        });
        using var start = new Barrier(threads);
        var openers = Enumerable.Range(0, threads).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait(timeout.Token);
            var opened = new List<uint>();
            for (var i = 0; i < perThread; i++)
            {
                opened.Add(pair.Client.OpenAsync(timeout.Token).AsTask().GetAwaiter().GetResult().Id);
            }

            return opened;
        }, timeout.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToList();

        var openedIds = (await Task.WhenAll(openers)).SelectMany(x => x).Order().ToList();
        var acceptedIds = await accepted;
        Assert.Equal(openedIds, acceptedIds.Order());
        Assert.Equal(acceptedIds.Order(), acceptedIds); // in id order, as the protocol requires
        Assert.True(pair.Client.IsAlive && pair.Server.IsAlive);
    }

    [Fact]
    public async Task HalfClose_EachFinArrivesAfterAllBytes_AndTheOtherDirectionKeepsWorking()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync();

        // The client finishes first; the server answers after reading to the end.
        var (client, server) = await pair.OpenAsync(timeout.Token);
        var request = RandomNumberGenerator.GetBytes(300_000);
        await client.WriteAsync(request, timeout.Token);
        client.ShutdownSend();
        Assert.Equal(request, await TrunkPair.ReadToEndAsync(server, timeout.Token));
        Assert.Equal(0, await server.ReadAsync(new byte[10], timeout.Token));
        var response = RandomNumberGenerator.GetBytes(200_000);
        await server.WriteAsync(response, timeout.Token);
        server.ShutdownSend();
        Assert.Equal(response, await TrunkPair.ReadToEndAsync(client, timeout.Token));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await client.WriteAsync(new byte[1], timeout.Token));
        client.Dispose();
        server.Dispose();

        // The server finishes first while the client keeps sending.
        (client, server) = await pair.OpenAsync(timeout.Token);
        var greeting = RandomNumberGenerator.GetBytes(5000);
        await server.WriteAsync(greeting, timeout.Token);
        server.ShutdownSend();
        Assert.Equal(greeting, await TrunkPair.ReadToEndAsync(client, timeout.Token));
        var upload = RandomNumberGenerator.GetBytes(1_000_000);
        var uploading = TrunkPair.WriteChunkedAsync(client, upload, 50_000, timeout.Token);
        var received = TrunkPair.ReadToEndAsync(server, timeout.Token);
        await uploading;
        client.ShutdownSend();
        Assert.Equal(upload, await received);
        client.Dispose();
        server.Dispose();
        Assert.Equal(0, pair.Client.StreamCount);
        Assert.Equal(0, pair.Server.StreamCount);
    }

    [Fact]
    public async Task ZeroByteRead_WaitsForData_WithoutTakingIt()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var pair = await TrunkPair.StartAsync();
        var (client, server) = await pair.OpenAsync(timeout.Token);
        var waiting = server.ReadAsync(Memory<byte>.Empty, timeout.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        await client.WriteAsync(new byte[] { 1, 2, 3 }, timeout.Token);
        Assert.Equal(0, await waiting);
        var buffer = new byte[10];
        Assert.Equal(3, await server.ReadAsync(buffer, timeout.Token));
        client.ShutdownSend();
        Assert.Equal(0, await server.ReadAsync(Memory<byte>.Empty, timeout.Token));
        Assert.Equal(0, await server.ReadAsync(buffer, timeout.Token));
    }

    private static async Task EchoAsync(TrunkStream stream, CancellationToken cancellationToken)
    {
        await using (stream)
        {
            var buffer = new byte[32 * 1024];
            int n;
            while ((n = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
            }

            stream.ShutdownSend();
        }
    }
}
