using Isthmus.Core.Relay.Trunks;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.Core.Tests.Relay.Trunks;

/// <summary>What an idle stream costs: the point of trunks is thousands of idle streams without a TLS session each.</summary>
public sealed class TrunkIdleMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TenThousandIdleStreams_WithAReadPendingOnEach_CostLittleManagedMemory()
    {
        const int Streams = 10_000;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var pair = await TrunkPair.StartAsync();
        var clients = new TrunkStream[Streams];
        var servers = new TrunkStream[Streams];
        var reads = new ValueTask<int>[Streams];
        var buffer = new byte[1];

        // Warm up (JIT, pools, the table's first growth), then measure from a quiet state.
        var (warmClient, warmServer) = await pair.OpenAsync(timeout.Token);
        await warmClient.WriteAsync(new byte[1000], timeout.Token);
        await warmServer.ReadExactlyAsync(new byte[1000], timeout.Token);
        warmClient.ShutdownSend();
        Assert.Equal(0, await warmServer.ReadAsync(buffer, timeout.Token));
        warmServer.Dispose();
        warmClient.Dispose();
        var before = GC.GetTotalMemory(forceFullCollection: true);

        for (var i = 0; i < Streams; i++)
        {
            clients[i] = await pair.Client.OpenAsync(timeout.Token);
        }

        for (var i = 0; i < Streams; i++)
        {
            servers[i] = await pair.Server.AcceptAsync(timeout.Token);
            // Kept and awaited once below; AsTask() would add a Task per stream to what is measured.
#pragma warning disable CA2012
            reads[i] = servers[i].ReadAsync(buffer, timeout.Token);
#pragma warning restore CA2012
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        var perStream = (after - before) / (double)Streams;
        output.WriteLine($"{Streams} idle streams (both ends in this process, a read pending on each server end): " +
            $"{after - before} bytes managed, {perStream:F0} bytes per stream");
        Assert.Equal(Streams, pair.Client.StreamCount);
        Assert.Equal(Streams, pair.Server.StreamCount);
        Assert.True(perStream < 8 * 1024, $"{perStream:F0} bytes per idle stream");
        Assert.All(reads, read => Assert.False(read.IsCompleted));

        // They are all still live: the last one carries a byte, then the trunk's death fails every read.
        await clients[^1].WriteAsync(new byte[] { 5 }, timeout.Token);
        Assert.Equal(1, await reads[^1]);
        pair.Client.Abort("test over");
        for (var i = 0; i < Streams - 1; i++)
        {
            await Assert.ThrowsAsync<IOException>(async () => await reads[i]);
        }

        GC.KeepAlive(clients);
    }
}
