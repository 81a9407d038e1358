using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Isthmus.Core.Security;
using Isthmus.Core.Tests.Clusters;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Wire;

/// <summary>
/// The WAN TLS stream over its record-batching layer, on real TLS 1.3 over loopback: bytes are exact both ways,
/// a large write leaves in one socket write, small writes and the handshake pass straight through, and reads of
/// any size come out of the layer's buffer intact.
/// </summary>
public sealed class WanTlsStreamTests : IDisposable
{
    private readonly TwoSiteCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task Large_write_leaves_in_one_socket_write_and_arrives_exact()
    {
        await using var pair = await Pair.ConnectAsync(_cluster.Directory);
        var data = Pattern(256 * 1024, seed: 1);
        var writesBefore = pair.ClientSocketWrites.Count;

        var read = ReadExactAsync(pair.Server, data.Length);
        await pair.Client.WriteAsync(data);

        Assert.Equal(data, await read);
        var writes = pair.ClientSocketWrites.Skip(writesBefore).ToList();
        // 16 records of 16 KiB plus their overhead, gathered into one write of the socket.
        var write = Assert.Single(writes);
        Assert.InRange(write, data.Length + 16, data.Length + (16 * 64));
    }

    [Fact]
    public async Task Routers_agree_on_aes128_gcm()
    {
        await using var pair = await Pair.ConnectAsync(_cluster.Directory);
        Assert.Equal(TlsCipherSuite.TLS_AES_128_GCM_SHA256, pair.Client.NegotiatedCipherSuite);
        Assert.Equal(TlsCipherSuite.TLS_AES_128_GCM_SHA256, pair.Server.NegotiatedCipherSuite);
    }

    [Fact]
    public async Task Small_writes_pass_straight_through()
    {
        await using var pair = await Pair.ConnectAsync(_cluster.Directory);
        var writesBefore = pair.ClientSocketWrites.Count;

        for (var i = 0; i < 5; i++)
        {
            await pair.Client.WriteAsync(new[] { (byte)i });
            var one = await ReadExactAsync(pair.Server, 1);
            Assert.Equal((byte)i, one[0]);
        }

        Assert.Equal(5, pair.ClientSocketWrites.Count - writesBefore);
    }

    [Fact]
    public async Task Many_sizes_both_ways_arrive_exact()
    {
        await using var pair = await Pair.ConnectAsync(_cluster.Directory);
        int[] sizes = [1, 100, 16 * 1024, (16 * 1024) + 1, 100_000, 256 * 1024, 700 * 1024, 3];
        var sent = new MemoryStream();
        var upstream = Task.Run(async () =>
        {
            var seed = 0;
            foreach (var size in sizes)
            {
                var chunk = Pattern(size, seed++);
                sent.Write(chunk);
                await pair.Client.WriteAsync(chunk);
            }

            pair.ClientSocket.Shutdown(SocketShutdown.Send);
        });

        // The reader asks for odd sizes, so records and the layer's buffer boundaries fall everywhere.
        var received = new MemoryStream();
        var buffer = new byte[7919];
        int n;
        while ((n = await pair.Server.ReadAsync(buffer)) > 0)
        {
            received.Write(buffer, 0, n);
        }

        await upstream;
        Assert.Equal(sent.ToArray(), received.ToArray());

        // And the other way, a big write the client reads with a big buffer.
        var back = Pattern(1024 * 1024, seed: 42);
        var read = ReadExactAsync(pair.Client, back.Length);
        await pair.Server.WriteAsync(back);
        Assert.Equal(back, await read);
    }

    [Fact]
    public async Task Zero_byte_read_waits_for_data_and_takes_none()
    {
        await using var pair = await Pair.ConnectAsync(_cluster.Directory);
        var wait = pair.Server.ReadAsync(Memory<byte>.Empty).AsTask();
        await pair.Client.WriteAsync("hello"u8.ToArray());
        Assert.Equal(0, await wait);
        Assert.Equal("hello"u8.ToArray(), await ReadExactAsync(pair.Server, 5));
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static async Task<byte[]> ReadExactAsync(Stream stream, int length)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var buffer = new byte[length];
        await stream.ReadExactlyAsync(buffer, timeout.Token);
        return buffer;
    }

    /// <summary>Counts the sizes of the writes that reach the client's socket (below the batching layer).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public List<int> Writes { get; } = [];

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (Writes)
            {
                Writes.Add(buffer.Length);
            }

            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private sealed class Pair : IAsyncDisposable
    {
        private readonly X509Certificate2[] _certificates;

        private Pair(SslStream client, SslStream server, Socket clientSocket, CountingStream counting, X509Certificate2[] certificates)
        {
            Client = client;
            Server = server;
            ClientSocket = clientSocket;
            Counting = counting;
            _certificates = certificates;
        }

        public SslStream Client { get; }

        public SslStream Server { get; }

        public Socket ClientSocket { get; }

        public List<int> ClientSocketWrites
        {
            get
            {
                lock (Counting.Writes)
                {
                    return [.. Counting.Writes];
                }
            }
        }

        private CountingStream Counting { get; }

        public static async Task<Pair> ConnectAsync(ClusterDirectory dir)
        {
            var ca = dir.LoadCaCertificate();
            var west = dir.LoadRouterIdentity("west");
            var east = dir.LoadRouterIdentity("east");
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var accept = listener.AcceptSocketAsync();
            await clientSocket.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
            var serverSocket = await accept;
            var counting = new CountingStream(new NetworkStream(clientSocket, ownsSocket: true));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var server = TlsEndpoints.WanServerAsync(new NetworkStream(serverSocket, ownsSocket: true),
                SslStreamCertificateContext.Create(east, null, offline: true), PeerCertificateValidator.Callback(ca, "router.west.lab", null), timeout.Token);
            var client = TlsEndpoints.WanClientAsync(counting, "router.east.lab",
                SslStreamCertificateContext.Create(west, null, offline: true), PeerCertificateValidator.Callback(ca, "router.east.lab", null), timeout.Token);
            await Task.WhenAll(server, client);
            return new Pair(await client, await server, clientSocket, counting, [ca, west, east]);
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
            foreach (var certificate in _certificates)
            {
                certificate.Dispose();
            }
        }
    }
}
