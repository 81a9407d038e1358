using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Isthmus.Core.Security;
using Isthmus.Core.Tests.Clusters;
using Xunit;

namespace Isthmus.Core.Tests.Security;

/// <summary>Real TLS 1.3 handshakes over loopback between router identities loaded from a cluster directory.</summary>
public sealed class MutualTlsTests : IDisposable
{
    private readonly TwoSiteCluster _cluster = new();
    private readonly ClusterDirectory _dir;

    public MutualTlsTests() => _dir = _cluster.Directory;

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task Two_routers_authenticate_each_other()
    {
        using var ca = _dir.LoadCaCertificate();
        using var west = _dir.LoadRouterIdentity("west");
        using var east = _dir.LoadRouterIdentity("east");
        var (client, server) = await ConnectedPair();
        await using (client)
        await using (server)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await Task.WhenAll(
                server.AuthenticateAsServerAsync(ClusterTls.ServerOptions(east, ca, requireClientCertificate: true, "router.west.lab"), timeout.Token),
                client.AuthenticateAsClientAsync(ClusterTls.ClientOptions(west, ca, "router.east.lab"), timeout.Token));

            Assert.Equal(SslProtocols.Tls13, client.SslProtocol);
            Assert.Equal(SslProtocols.Tls13, server.SslProtocol);
            Assert.True(client.IsMutuallyAuthenticated);
            Assert.True(server.IsMutuallyAuthenticated);
            Assert.Equal("CN=router.east.lab", client.RemoteCertificate!.Subject);
            Assert.Equal("CN=router.west.lab", server.RemoteCertificate!.Subject);

            await client.WriteAsync("ping"u8.ToArray(), timeout.Token);
            var buffer = new byte[4];
            await server.ReadExactlyAsync(buffer, timeout.Token);
            Assert.Equal("ping"u8.ToArray(), buffer);
        }
    }

    [Fact]
    public async Task A_node_without_certificate_checks_its_router()
    {
        using var ca = _dir.LoadCaCertificate();
        using var west = _dir.LoadRouterIdentity("west");
        var serverOptions = ClusterTls.ServerOptions(west, ca, requireClientCertificate: false);
        var (client, server) = await ConnectedPair();
        await using (client)
        await using (server)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await Task.WhenAll(
                server.AuthenticateAsServerAsync(serverOptions, timeout.Token),
                client.AuthenticateAsClientAsync(ClusterTls.ClientOptions(null, ca, "router.west.lab"), timeout.Token));
            Assert.Equal(SslProtocols.Tls13, client.SslProtocol);
            Assert.False(server.IsMutuallyAuthenticated);
            Assert.Null(server.RemoteCertificate);
        }
    }

    [Fact]
    public async Task Handshake_with_callbacks_set_by_hand()
    {
        // The shape a caller that builds its own options uses: only the callback comes from Isthmus.
        using var ca = _dir.LoadCaCertificate();
        using var west = _dir.LoadRouterIdentity("west");
        using var east = _dir.LoadRouterIdentity("east");
        var (client, server) = await ConnectedPair();
        await using (client)
        await using (server)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await Task.WhenAll(
                server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = east,
                    ClientCertificateRequired = true,
                    EnabledSslProtocols = SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = PeerCertificateValidator.Callback(ca, "router.west.lab"),
                }, timeout.Token),
                client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "router.east.lab",
                    ClientCertificates = [west],
                    EnabledSslProtocols = SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = PeerCertificateValidator.Callback(ca, "router.east.lab"),
                }, timeout.Token));
            Assert.True(server.IsMutuallyAuthenticated);
            Assert.Equal("CN=router.west.lab", server.RemoteCertificate!.Subject);
        }
    }

    [Fact]
    public async Task Server_refuses_a_client_of_another_ca()
    {
        using var ca = _dir.LoadCaCertificate();
        using var east = _dir.LoadRouterIdentity("east");
        using var otherCa = ClusterCa.CreateAuthority("lab");
        using var impostor = ClusterCa.IssueRouterCertificate(otherCa, "west", "lab");
        var (client, server) = await ConnectedPair();
        await using (client)
        await using (server)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var serverTask = server.AuthenticateAsServerAsync(ClusterTls.ServerOptions(east, ca, requireClientCertificate: true), timeout.Token);
            // The client trusts the real CA; only its own certificate is foreign.
            var clientTask = HandshakeAndRead(client, ClusterTls.ClientOptions(impostor, ca, "router.east.lab"), timeout.Token);

            await Assert.ThrowsAsync<AuthenticationException>(() => serverTask);
            await server.DisposeAsync();
            // In TLS 1.3 the client may finish its side before the server refuses it; it then sees the refusal
            // as an alert or a closed stream on its first read.
            var clientError = await Record.ExceptionAsync(() => clientTask);
            Assert.True(clientError is AuthenticationException or IOException || (clientError is null && !client.CanRead),
                $"client saw {clientError?.GetType().Name ?? "no error"}");
        }
    }

    [Fact]
    public async Task Client_refuses_a_server_of_another_ca()
    {
        using var ca = _dir.LoadCaCertificate();
        using var west = _dir.LoadRouterIdentity("west");
        using var otherCa = ClusterCa.CreateAuthority("lab");
        using var impostor = ClusterCa.IssueRouterCertificate(otherCa, "east", "lab");
        var (client, server) = await ConnectedPair();
        await using (client)
        await using (server)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var serverTask = server.AuthenticateAsServerAsync(ClusterTls.ServerOptions(impostor, otherCa, requireClientCertificate: false), timeout.Token);
            var clientTask = client.AuthenticateAsClientAsync(ClusterTls.ClientOptions(west, ca, "router.east.lab"), timeout.Token);

            await Assert.ThrowsAsync<AuthenticationException>(() => clientTask);
            await Record.ExceptionAsync(() => serverTask);
        }
    }

    [Fact]
    public async Task Client_refuses_a_router_of_this_ca_with_another_name()
    {
        using var ca = _dir.LoadCaCertificate();
        using var west = _dir.LoadRouterIdentity("west");
        using var east = _dir.LoadRouterIdentity("east");
        var (client, server) = await ConnectedPair();
        await using (client)
        await using (server)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            // West dials expecting router.north.lab, but east answers.
            var serverTask = server.AuthenticateAsServerAsync(ClusterTls.ServerOptions(east, ca, requireClientCertificate: true), timeout.Token);
            var clientTask = client.AuthenticateAsClientAsync(ClusterTls.ClientOptions(west, ca, "router.north.lab"), timeout.Token);

            await Assert.ThrowsAsync<AuthenticationException>(() => clientTask);
            await Record.ExceptionAsync(() => serverTask);
        }
    }

    private static async Task HandshakeAndRead(SslStream client, SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        await client.AuthenticateAsClientAsync(options, cancellationToken);
        var buffer = new byte[1];
        var read = await client.ReadAsync(buffer, cancellationToken);
        if (read == 0)
        {
            throw new IOException("the server closed the connection");
        }
    }

    private static async Task<(SslStream Client, SslStream Server)> ConnectedPair()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptSocketAsync();
        await clientSocket.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var serverSocket = await accept;
        return (new SslStream(new NetworkStream(clientSocket, ownsSocket: true)),
            new SslStream(new NetworkStream(serverSocket, ownsSocket: true)));
    }
}
