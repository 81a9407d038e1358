using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
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
    private readonly TwoSiteCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task ManyShortStreams_WithHalfClose_ArriveWhole_AndEndCleanly()
    {
        using var ca = _cluster.Directory.LoadCaCertificate();
        using var westCert = _cluster.Directory.LoadRouterIdentity("west");
        using var eastCert = _cluster.Directory.LoadRouterIdentity("east");
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
        var (client, relayIn) = await LoopbackSockets.PairAsync();
        var (legOut, legIn) = await LoopbackSockets.PairAsync();
        var (relayOut, server) = await LoopbackSockets.PairAsync();
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
        var reading = LoopbackSockets.ReadToEndAsync(client, timeout.Token);
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

}
