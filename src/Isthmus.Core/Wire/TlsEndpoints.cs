using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Isthmus.Core.Wire;

/// <summary>
/// TLS 1.3 only, certificates checked against the cluster CA alone (never the system store), no revocation
/// lookups (compute nodes have no Internet). Names are <c>router.SITE.CLUSTER</c>.
/// </summary>
public static class TlsEndpoints
{
    public static string RouterName(string site, string cluster) => $"router.{site}.{cluster}";

    public static async Task<SslStream> ServerAsync(Socket socket, SslStreamCertificateContext identity, bool requireClientCertificate,
        RemoteCertificateValidationCallback? validateClient, CancellationToken cancellationToken)
    {
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = identity,
                ClientCertificateRequired = requireClientCertificate,
                EnabledSslProtocols = SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = validateClient,
            }, cancellationToken).ConfigureAwait(false);
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
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = targetHost,
                ClientCertificateContext = identity,
                EnabledSslProtocols = SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = validateServer,
            }, cancellationToken).ConfigureAwait(false);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
