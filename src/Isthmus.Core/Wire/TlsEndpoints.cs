using System.Net.Security;
using System.Net.Sockets;
using Isthmus.Core.Security;

namespace Isthmus.Core.Wire;

/// <summary>
/// Authenticated streams over connected sockets, with the options of <see cref="ClusterTls"/> (TLS 1.3 only,
/// cluster CA only, no revocation lookups). Router names are <c>router.SITE.CLUSTER</c>.
/// </summary>
public static class TlsEndpoints
{
    public static string RouterName(string site, string cluster) => ClusterCa.RouterDnsName(site, cluster);

    public static async Task<SslStream> ServerAsync(Socket socket, SslStreamCertificateContext identity, bool requireClientCertificate,
        RemoteCertificateValidationCallback? validateClient, CancellationToken cancellationToken)
    {
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsServerAsync(ClusterTls.ServerOptions(identity, requireClientCertificate, validateClient), cancellationToken).ConfigureAwait(false);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public static async Task<SslStream> ClientAsync(Socket socket, string targetHost, SslStreamCertificateContext? identity,
        RemoteCertificateValidationCallback validateServer, CancellationToken cancellationToken)
    {
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(ClusterTls.ClientOptions(identity, targetHost, validateServer), cancellationToken).ConfigureAwait(false);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
