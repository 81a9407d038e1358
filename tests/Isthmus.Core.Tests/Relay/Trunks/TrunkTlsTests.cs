using System.Net.Security;
using System.Security.Cryptography;
using Isthmus.Core.Relay.Trunks;
using Isthmus.Core.Security;
using Isthmus.Core.Tests.Clusters;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Trunks;

/// <summary>A trunk over a real TLS 1.3 connection between two router certificates, as between routers.</summary>
public sealed class TrunkTlsTests : IDisposable
{
    private readonly TwoSiteCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task OverTls_ConcurrentStreams_EchoExactly_AndTheDeathReachesBothEnds()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var ca = _cluster.Directory.LoadCaCertificate();
        using var westCert = _cluster.Directory.LoadRouterIdentity("west");
        using var eastCert = _cluster.Directory.LoadRouterIdentity("east");
        var west = SslStreamCertificateContext.Create(westCert, null, offline: true);
        var east = SslStreamCertificateContext.Create(eastCert, null, offline: true);
        var (outer, inner) = await LoopbackSockets.PairAsync();
        var serverTls = TlsEndpoints.ServerAsync(new System.Net.Sockets.NetworkStream(inner, ownsSocket: true), east, requireClientCertificate: true,
            PeerCertificateValidator.Callback(ca, "router.west.lab"), timeout.Token);
        var clientTls = await TlsEndpoints.ClientAsync(new System.Net.Sockets.NetworkStream(outer, ownsSocket: true), "router.east.lab", west,
            PeerCertificateValidator.Callback(ca, "router.east.lab"), timeout.Token);
        await using var client = Trunk.StartClient(clientTls, TrunkOptions.Default, NullLogger.Instance);
        await using var server = Trunk.StartServer(await serverTls, TrunkOptions.Default, NullLogger.Instance);

        const int Streams = 30;
        var echoes = Task.Run(async () =>
        {
            var running = new List<Task>();
            for (var i = 0; i < Streams; i++)
            {
                var stream = await server.AcceptAsync(timeout.Token);
                running.Add(Task.Run(async () =>
                {
                    await using (stream)
                    {
                        var buffer = new byte[16 * 1024];
                        int n;
                        while ((n = await stream.ReadAsync(buffer, timeout.Token)) > 0)
                        {
                            await stream.WriteAsync(buffer.AsMemory(0, n), timeout.Token);
                        }

                        stream.ShutdownSend();
                    }
                }));
            }

            await Task.WhenAll(running);
        });
        await Task.WhenAll(Enumerable.Range(0, Streams).Select(i => Task.Run(async () =>
        {
            var payload = RandomNumberGenerator.GetBytes(i * 40_000 + 1);
            await using var stream = await client.OpenAsync(timeout.Token);
            var back = TrunkPair.ReadToEndAsync(stream, timeout.Token);
            await TrunkPair.WriteChunkedAsync(stream, payload, 30_000, timeout.Token);
            stream.ShutdownSend();
            Assert.Equal(payload, await back);
        })));
        await echoes;

        var idle = await client.OpenAsync(timeout.Token);
        var accepted = await server.AcceptAsync(timeout.Token);
        var pendingRead = accepted.ReadAsync(new byte[1], timeout.Token).AsTask();
        client.Abort("test over");
        await Assert.ThrowsAsync<IOException>(() => pendingRead);
        Assert.Equal("test over", await client.Completion.WaitAsync(timeout.Token));
        Assert.NotNull(await server.Completion.WaitAsync(timeout.Token));
        await Assert.ThrowsAsync<IOException>(async () => _ = await idle.ReadAsync(new byte[1], timeout.Token));
    }
}
