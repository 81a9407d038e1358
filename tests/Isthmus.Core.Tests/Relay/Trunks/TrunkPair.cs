using System.Net.Sockets;
using Isthmus.Core.Relay.Trunks;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Trunks;

/// <summary>A client and a server trunk over one real loopback TCP connection, and stream helpers.</summary>
internal sealed class TrunkPair : IAsyncDisposable
{
    private TrunkPair(Trunk client, Trunk server, Socket clientSocket, Socket serverSocket)
    {
        Client = client;
        Server = server;
        ClientSocket = clientSocket;
        ServerSocket = serverSocket;
    }

    public Trunk Client { get; }

    public Trunk Server { get; }

    public Socket ClientSocket { get; }

    public Socket ServerSocket { get; }

    public static async Task<TrunkPair> StartAsync(TrunkOptions? options = null, TrunkOptions? serverOptions = null)
    {
        var (outer, inner) = await LoopbackSockets.PairAsync();
        inner.NoDelay = true;
        var client = Trunk.StartClient(new NetworkStream(outer, ownsSocket: true), options ?? TrunkOptions.Default, NullLogger.Instance);
        var server = Trunk.StartServer(new NetworkStream(inner, ownsSocket: true), serverOptions ?? options ?? TrunkOptions.Default, NullLogger.Instance);
        return new TrunkPair(client, server, outer, inner);
    }

    /// <summary>Opens a stream and accepts it on the other side.</summary>
    public async Task<(TrunkStream Client, TrunkStream Server)> OpenAsync(CancellationToken cancellationToken)
    {
        var opened = await Client.OpenAsync(cancellationToken);
        var accepted = await Server.AcceptAsync(cancellationToken);
        Assert.Equal(opened.Id, accepted.Id);
        return (opened, accepted);
    }

    public static async Task<byte[]> ReadToEndAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var collected = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            collected.Write(buffer, 0, n);
        }

        return collected.ToArray();
    }

    /// <summary>Writes <paramref name="data"/> in chunks of varying size (1 byte .. <paramref name="maxChunk"/>).</summary>
    public static async Task WriteChunkedAsync(Stream stream, byte[] data, int maxChunk, CancellationToken cancellationToken)
    {
        var random = new Random(data.Length);
        for (var sent = 0; sent < data.Length;)
        {
            var n = Math.Min(data.Length - sent, random.Next(1, maxChunk + 1));
            await stream.WriteAsync(data.AsMemory(sent, n), cancellationToken);
            sent += n;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Server.DisposeAsync();
    }
}
