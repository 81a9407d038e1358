using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Isthmus.Core.Relay;

namespace Isthmus.Benchmarks;

/// <summary>
/// The relay copy loop (<see cref="StreamRelay"/>) between two real loopback TCP connections: one invocation
/// relays <see cref="MegaBytes"/> MiB one way (written in <see cref="WriteBytes"/> chunks) and the half-close
/// back. Allocation figures show what the loop costs per stream beyond the pooled buffers (the client and
/// server here use the ValueTask socket calls, which do not allocate, so what is left is the relay's and
/// the four connections' set-up).
/// </summary>
[MemoryDiagnoser]
public class StreamRelayBenchmarks : IDisposable
{
    private Socket _listener = null!;
    private byte[] _chunk = null!;
    private byte[] _sink = null!;

    [Params(1024, 65536)]
    public int WriteBytes { get; set; }

    public int MegaBytes { get; set; } = 16;

    [GlobalSetup]
    public void Setup()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
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
            _listener?.Dispose();
        }
    }

    [Benchmark]
    public async Task<long> RelayOneWay()
    {
        var (client, relayA) = await PairAsync().ConfigureAwait(false);
        var (relayB, server) = await PairAsync().ConfigureAwait(false);
        var relay = StreamRelay.RunAsync(new RelayEndpoint(relayA), new RelayEndpoint(relayB));
        var total = (long)MegaBytes << 20;
        var writer = Task.Run(async () =>
        {
            for (long sent = 0; sent < total; sent += _chunk.Length)
            {
                await client.SendAsync(_chunk.AsMemory(), SocketFlags.None).ConfigureAwait(false);
            }

            client.Shutdown(SocketShutdown.Send);
        });
        long received = 0;
        int n;
        while ((n = await server.ReceiveAsync(_sink.AsMemory(), SocketFlags.None).ConfigureAwait(false)) > 0)
        {
            received += n;
        }

        server.Shutdown(SocketShutdown.Send);
        await writer.ConfigureAwait(false);
        await relay.ConfigureAwait(false);
        client.Dispose();
        server.Dispose();
        return received;
    }

    private async Task<(Socket Connector, Socket Accepted)> PairAsync()
    {
        var connector = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = _listener.AcceptAsync();
        await connector.ConnectAsync(_listener.LocalEndPoint!).ConfigureAwait(false);
        return (connector, await accept.ConfigureAwait(false));
    }
}
