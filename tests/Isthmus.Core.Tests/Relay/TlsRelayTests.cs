using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using Isthmus.Cluster;
using Isthmus.Core.Addressing;
using Isthmus.Core.Relay;
using Isthmus.Core.Security;
using Isthmus.Core.Tests.Clusters;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Relay;

/// <summary>
/// The inter-site shape on loopback: client ⇄ [relay] ⇄ TLS 1.3 leg ⇄ [relay] ⇄ echo server. Many short
/// streams with half-close in both directions, which is where a TLS shutdown once raced a read.
/// </summary>
public sealed class TlsRelayTests : IDisposable
{
    private readonly ScratchDirectory _scratch = new();
    private readonly ClusterDirectory _dir;

    public TlsRelayTests()
    {
        _dir = ClusterCreator.New(_scratch.Combine("c"), IPv4Cidr.Parse("100.64.0.0/16"), "lab");
        ClusterCreator.AddSite(_dir.Path, "west", HostPort.Parse("127.0.0.1:7000"), HostPort.Parse("127.0.0.1:7001"));
        ClusterCreator.AddSite(_dir.Path, "east", HostPort.Parse("127.0.0.1:7100"), HostPort.Parse("127.0.0.1:7101"));
    }

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task ManyShortStreams_WithHalfClose_ArriveWhole_AndEndCleanly()
    {
        using var ca = _dir.LoadCaCertificate();
        using var westCert = _dir.LoadRouterIdentity("west");
        using var eastCert = _dir.LoadRouterIdentity("east");
        var west = SslStreamCertificateContext.Create(westCert, null, offline: true);
        var east = SslStreamCertificateContext.Create(eastCert, null, offline: true);
        for (var i = 0; i < 80; i++)
        {
            var size = i % 4 == 0 ? 1 : RandomNumberGenerator.GetInt32(1, 2_000_000);
            await OneStreamAsync(ca, west, east, size);
        }
    }

    private static async Task OneStreamAsync(System.Security.Cryptography.X509Certificates.X509Certificate2 ca,
        SslStreamCertificateContext west, SslStreamCertificateContext east, int size)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (client, relayIn) = await PairAsync();
        var (legOut, legIn) = await PairAsync();
        var (relayOut, server) = await PairAsync();
        var serverTls = TlsEndpoints.ServerAsync(legIn, east, requireClientCertificate: true,
            PeerCertificateValidator.Callback(ca, "router.west.lab"), timeout.Token);
        var clientTls = await TlsEndpoints.ClientAsync(legOut, "router.east.lab", west, PeerCertificateValidator.Callback(ca, "router.east.lab"), timeout.Token);
        var relayWest = StreamRelay.RunAsync(new RelayEndpoint(relayIn), new RelayEndpoint(legOut, clientTls), timeout.Token);
        var relayEast = StreamRelay.RunAsync(new RelayEndpoint(legIn, await serverTls), new RelayEndpoint(relayOut), timeout.Token);

        var payload = RandomNumberGenerator.GetBytes(size);
        // A streaming echo: bytes flow back while the client is still sending, so the client's FIN reaches
        // each relay while the other direction is busy reading the TLS leg.
        var echo = Task.Run(async () =>
        {
            var buffer = new byte[16384];
            int n, total = 0;
            while ((n = await server.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                await server.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, timeout.Token);
                total += n;
            }

            server.Shutdown(SocketShutdown.Send);
            return total;
        }, timeout.Token);
        var reading = ReadToEndAsync(client, timeout.Token);
        await client.SendAsync(payload, SocketFlags.None, timeout.Token);
        client.Shutdown(SocketShutdown.Send);
        var back = await reading;

        Assert.Equal(size, await echo);
        Assert.Equal(payload, back);
        var westResult = await relayWest;
        var eastResult = await relayEast;
        Assert.False(westResult.Failed, "west relay reset the stream");
        Assert.False(eastResult.Failed, "east relay reset the stream");
        Assert.Equal(size, westResult.BytesAToB);
        Assert.Equal(size, eastResult.BytesBToA);
        client.Dispose();
        server.Dispose();
    }

    private static async Task<(Socket Outer, Socket Inner)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var outer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await outer.ConnectAsync(listener.LocalEndPoint!);
        var inner = await listener.AcceptAsync();
        return (outer, inner);
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        using var collected = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
        {
            collected.Write(buffer, 0, n);
        }

        return collected.ToArray();
    }
}
