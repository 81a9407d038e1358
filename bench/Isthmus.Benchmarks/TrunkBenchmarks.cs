using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Isthmus.Core.Relay.Trunks;
using Microsoft.Extensions.Logging.Abstractions;

namespace Isthmus.Benchmarks;

/// <summary>
/// A WAN trunk (<see cref="Trunk"/>) over one real loopback TCP connection, set up once: one invocation of
/// <see cref="OneStreamOneWay"/> opens a virtual stream, sends <see cref="MegaBytes"/> MiB through it in
/// <see cref="WriteBytes"/> writes and the half-close, and reads it all on the other side;
/// <see cref="OpenEchoClose"/> is a stream's whole life for a short request (open, one byte each way, both
/// Fins, dispose). Allocation figures show what a stream costs beyond the trunk's pooled buffers.
/// </summary>
[MemoryDiagnoser]
public class TrunkBenchmarks : IDisposable
{
    private Trunk _client = null!;
    private Trunk _server = null!;
    private byte[] _chunk = null!;
    private byte[] _sink = null!;

    [Params(1024, 65536)]
    public int WriteBytes { get; set; }

    public int MegaBytes { get; set; } = 16;

    [GlobalSetup]
    public void Setup()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var connector = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        connector.Connect(listener.LocalEndPoint!);
        var accepted = listener.Accept();
        accepted.NoDelay = true;
        _client = Trunk.StartClient(new NetworkStream(connector, ownsSocket: true), TrunkOptions.Default, NullLogger.Instance);
        _server = Trunk.StartServer(new NetworkStream(accepted, ownsSocket: true), TrunkOptions.Default, NullLogger.Instance);
        _chunk = new byte[WriteBytes];
        _sink = new byte[256 * 1024];
    }

    /// <summary>BenchmarkDotNet derives from benchmark classes (so this one is not sealed) and calls this once at the end.</summary>
    [GlobalCleanup]
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _client?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _server?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Benchmark]
    public async Task<long> OneStreamOneWay()
    {
        var sending = await _client.OpenAsync().ConfigureAwait(false);
        var receiving = await _server.AcceptAsync().ConfigureAwait(false);
        var total = (long)MegaBytes << 20;
        var writer = Task.Run(async () =>
        {
            for (long sent = 0; sent < total; sent += _chunk.Length)
            {
                await sending.WriteAsync(_chunk.AsMemory()).ConfigureAwait(false);
            }

            sending.ShutdownSend();
        });
        long received = 0;
        int n;
        while ((n = await receiving.ReadAsync(_sink.AsMemory()).ConfigureAwait(false)) > 0)
        {
            received += n;
        }

        receiving.ShutdownSend();
        await writer.ConfigureAwait(false);
        while (await sending.ReadAsync(_sink.AsMemory()).ConfigureAwait(false) > 0)
        {
        }

        await receiving.DisposeAsync().ConfigureAwait(false);
        await sending.DisposeAsync().ConfigureAwait(false);
        return received;
    }

    /// <summary>Does not depend on <see cref="WriteBytes"/>; it runs once per value all the same.</summary>
    [Benchmark]
    public async Task<int> OpenEchoClose()
    {
        var opened = await _client.OpenAsync().ConfigureAwait(false);
        await opened.WriteAsync(_sink.AsMemory(0, 1)).ConfigureAwait(false);
        opened.ShutdownSend();
        var accepted = await _server.AcceptAsync().ConfigureAwait(false);
        var n = await accepted.ReadAsync(_sink.AsMemory(0, 1)).ConfigureAwait(false);
        await accepted.WriteAsync(_sink.AsMemory(0, 1)).ConfigureAwait(false);
        accepted.ShutdownSend();
        n += await opened.ReadAsync(_sink.AsMemory(0, 1)).ConfigureAwait(false);
        while (await opened.ReadAsync(_sink.AsMemory(0, 1)).ConfigureAwait(false) > 0)
        {
        }

        while (await accepted.ReadAsync(_sink.AsMemory(0, 1)).ConfigureAwait(false) > 0)
        {
        }

        await accepted.DisposeAsync().ConfigureAwait(false);
        await opened.DisposeAsync().ConfigureAwait(false);
        return n;
    }
}
