using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Isthmus.Core.Config;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;

namespace Isthmus.Router;

/// <summary>Everything a router's handlers share: its configuration, identity, secrets and registry.</summary>
public sealed class RouterContext
{
    public required ClusterFile Cluster { get; init; }

    public required SiteSettings Site { get; init; }

    public required X509Certificate2 CaCertificate { get; init; }

    public required SslStreamCertificateContext Identity { get; init; }

    public required byte[] EnrolSecret { get; init; }

    public required byte[] RouterSecret { get; init; }

    public required NodeRegistry Registry { get; init; }

    /// <summary><c>DIR/state/SITE</c>: the registry's bindings and the domain table live here.</summary>
    public required string StateDirectory { get; init; }

    public ReplayGuard Replays { get; } = new();

    public RouterMetrics Metrics { get; } = new();

    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public string Name => TlsEndpoints.RouterName(Site.Name, Cluster.Cluster.Name);

    /// <summary>How a leg to <paramref name="site"/>'s router is secured: a TLS client handshake, or null for cleartext legs.</summary>
    public Func<System.Net.Sockets.Socket, CancellationToken, Task<Stream>>? WanSecurityFor(SiteSettings site, Microsoft.Extensions.Logging.ILogger logger)
    {
        if (!Cluster.Cluster.WanEncryption)
        {
            return null;
        }

        var peerName = TlsEndpoints.RouterName(site.Name, Cluster.Cluster.Name);
        var validator = ValidatorFor(peerName, logger);
        return async (socket, ct) => await TlsEndpoints.ClientAsync(socket, peerName, Identity, validator, ct).ConfigureAwait(false);
    }

    public RemoteCertificateValidationCallback ValidatorFor(string? expectedName, Microsoft.Extensions.Logging.ILogger logger) =>
        PeerCertificateValidator.Callback(CaCertificate, expectedName, logger);
}
