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

    /// <summary>
    /// A router's TLS server for a connection from a peer router (WAN legs, trunks, peer links): records are
    /// batched into large socket reads and writes (<see cref="WanTlsStream"/>).
    /// </summary>
    public static Task<SslStream> WanServerAsync(Stream inner, SslStreamCertificateContext identity,
        RemoteCertificateValidationCallback validateClient, CancellationToken cancellationToken)
    {
        var tls = new WanTlsStream(new RecordBatchingStream(inner));
        return AuthenticatedAsync(tls, () => tls.AuthenticateAsServerAsync(ClusterTls.ServerOptions(identity, requireClientCertificate: true, validateClient), cancellationToken));
    }

    /// <summary>A router's TLS client to a peer router, with records batched like <see cref="WanServerAsync"/>.</summary>
    public static Task<SslStream> WanClientAsync(Stream inner, string targetHost, SslStreamCertificateContext? identity,
        RemoteCertificateValidationCallback validateServer, CancellationToken cancellationToken)
    {
        var tls = new WanTlsStream(new RecordBatchingStream(inner));
        return AuthenticatedAsync(tls, () => tls.AuthenticateAsClientAsync(ClusterTls.ClientOptions(identity, targetHost, validateServer), cancellationToken));
    }

    public static Task<SslStream> ServerAsync(Socket socket, SslStreamCertificateContext identity, bool requireClientCertificate,
        RemoteCertificateValidationCallback? validateClient, CancellationToken cancellationToken) =>
        ServerAsync(new NetworkStream(socket, ownsSocket: false), identity, requireClientCertificate, validateClient, cancellationToken);

    /// <summary>A TLS server over <paramref name="inner"/> (node control channels; router-to-router connections use <see cref="WanServerAsync"/>).</summary>
    public static Task<SslStream> ServerAsync(Stream inner, SslStreamCertificateContext identity, bool requireClientCertificate,
        RemoteCertificateValidationCallback? validateClient, CancellationToken cancellationToken)
    {
        var tls = new SslStream(inner, leaveInnerStreamOpen: false);
        return AuthenticatedAsync(tls, () => tls.AuthenticateAsServerAsync(ClusterTls.ServerOptions(identity, requireClientCertificate, validateClient), cancellationToken));
    }

    public static Task<SslStream> ClientAsync(Socket socket, string targetHost, SslStreamCertificateContext? identity,
        RemoteCertificateValidationCallback validateServer, CancellationToken cancellationToken) =>
        ClientAsync(new NetworkStream(socket, ownsSocket: false), targetHost, identity, validateServer, cancellationToken);

    /// <summary>A TLS client over <paramref name="inner"/> (to a router as a node or admin; router-to-router connections use <see cref="WanClientAsync"/>).</summary>
    public static Task<SslStream> ClientAsync(Stream inner, string targetHost, SslStreamCertificateContext? identity,
        RemoteCertificateValidationCallback validateServer, CancellationToken cancellationToken)
    {
        var tls = new SslStream(inner, leaveInnerStreamOpen: false);
        return AuthenticatedAsync(tls, () => tls.AuthenticateAsClientAsync(ClusterTls.ClientOptions(identity, targetHost, validateServer), cancellationToken));
    }

    /// <summary>The stream once <paramref name="handshake"/> succeeded; disposed if it failed.</summary>
    private static async Task<SslStream> AuthenticatedAsync(SslStream tls, Func<Task> handshake)
    {
        try
        {
            await handshake().ConfigureAwait(false);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
