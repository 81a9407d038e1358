using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Isthmus.Cluster;
using Isthmus.Core.Security;
using Isthmus.Core.Tests.Clusters;
using Isthmus.Router;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Core.Tests.Security;

/// <summary>Router certificate expiry, renewal (cluster renew-router) and CA rotation (cluster rotate-ca).</summary>
public sealed class CertificateLifecycleTests : IDisposable
{
    private readonly TwoSiteCluster _cluster = new();
    private ClusterDirectory Dir => _cluster.Directory;

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task A_node_refuses_a_router_with_an_expired_certificate_and_logs_why()
    {
        using var ca = Dir.LoadCaWithKey();
        using var expired = ClusterCa.IssueCertificate(ca, "router.west.lab", DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddMinutes(-5));
        var log = new CapturingLogger();
        var (client, server) = await ConnectedPair();
        await using (client)
        await using (server)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var serverTask = server.AuthenticateAsServerAsync(ClusterTls.ServerOptions(expired, ca, requireClientCertificate: false), timeout.Token);
            var clientTask = client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "router.west.lab",
                EnabledSslProtocols = SslProtocols.Tls13,
                RemoteCertificateValidationCallback = PeerCertificateValidator.Callback(ca, "router.west.lab", log),
            }, timeout.Token);

            await Assert.ThrowsAsync<AuthenticationException>(() => clientTask);
            await Record.ExceptionAsync(() => serverTask);
        }

        var line = Assert.Single(log.Lines);
        Assert.StartsWith("TLS peer refused: certificate 'CN=router.west.lab' expired on ", line, StringComparison.Ordinal);
        Assert.EndsWith(" UTC", line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_router_does_not_start_with_an_expired_certificate_and_says_how_to_renew_it()
    {
        using (var ca = Dir.LoadCaWithKey())
        using (var expired = ClusterCa.IssueCertificate(ca, "router.west.lab", DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddMinutes(-5)))
        {
            ClusterCa.WritePrivateKey(Dir.RouterKeyPath("west"), expired);
            ClusterCa.WriteCertificate(Dir.RouterCertificatePath("west"), expired);
        }

        var error = Assert.Throws<UserException>(() => SiteRouter.LoadContext(Dir.Path, "west", NullLoggerFactory.Instance));
        Assert.Contains("router.crt: certificate 'CN=router.west.lab' expired on ", error.Message, StringComparison.Ordinal);
        Assert.Contains($"'isthmus cluster renew-router {Dir.DisplayPath} west'", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, error.ExitCode);

        var until = ClusterCreator.RenewRouter(Dir.Path, "west");
        Assert.InRange((until - DateTime.UtcNow).TotalDays, 1820, 1830);
        var context = SiteRouter.LoadContext(Dir.Path, "west", NullLoggerFactory.Instance);
        Assert.Equal("router.west.lab", context.Name);
    }

    [Fact]
    public void Renewing_keeps_the_ca_and_changes_the_key()
    {
        using var before = Dir.LoadRouterIdentity("east");
        ClusterCreator.RenewRouter(Dir.Path, "east");
        using var after = Dir.LoadRouterIdentity("east");
        using var ca = Dir.LoadCaCertificate();
        Assert.NotEqual(before.Thumbprint, after.Thumbprint);
        Assert.NotEqual(before.GetPublicKeyString(), after.GetPublicKeyString());
        Assert.True(PeerCertificateValidator.Validate(after, ca, "router.east.lab", out var reason), reason);
        Assert.Throws<UserException>(() => ClusterCreator.RenewRouter(Dir.Path, "north"));
    }

    [Fact]
    public void Rotating_the_ca_reissues_every_router_and_old_certificates_are_refused()
    {
        using var oldCa = Dir.LoadCaCertificate();
        using var oldWest = Dir.LoadRouterIdentity("west");
        var enrolSecret = Dir.LoadEnrolSecret();
        var sites = ClusterCreator.RotateCa(Dir.Path);
        Assert.Equal(["west", "east"], sites);

        using var newCa = Dir.LoadCaCertificate();
        Assert.NotEqual(oldCa.Thumbprint, newCa.Thumbprint);
        Assert.Equal(oldCa.Thumbprint, ClusterCa.ReadCertificate(Dir.CaCertificatePath + ".previous").Thumbprint);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Dir.CaKeyPath + ".previous"));
        foreach (var site in sites)
        {
            using var router = Dir.LoadRouterIdentity(site);
            Assert.True(PeerCertificateValidator.Validate(router, newCa, $"router.{site}.lab", out var reason), reason);
            Assert.False(PeerCertificateValidator.Validate(router, oldCa, $"router.{site}.lab", out _));
        }

        Assert.False(PeerCertificateValidator.Validate(oldWest, newCa, "router.west.lab", out var refused));
        Assert.Contains("not signed by this cluster's CA", refused, StringComparison.Ordinal);
        Assert.Equal(enrolSecret, Dir.LoadEnrolSecret());

        ClusterCreator.RotateCa(Dir.Path, newSecrets: true);
        Assert.NotEqual(enrolSecret, Dir.LoadEnrolSecret());
        Assert.Equal(newCa.Thumbprint, ClusterCa.ReadCertificate(Dir.CaCertificatePath + ".previous").Thumbprint);
        _ = SiteRouter.LoadContext(Dir.Path, "east", NullLoggerFactory.Instance);
    }

    private static async Task<(SslStream Client, SslStream Server)> ConnectedPair()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptSocketAsync();
        await clientSocket.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var serverSocket = await accept;
        return (new SslStream(new NetworkStream(clientSocket, ownsSocket: true)), new SslStream(new NetworkStream(serverSocket, ownsSocket: true)));
    }

    private sealed class CapturingLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines)
            {
                Lines.Add(formatter(state, exception));
            }
        }
    }
}
