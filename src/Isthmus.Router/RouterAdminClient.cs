using System.Net.Sockets;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Config;
using Isthmus.Core.Domains;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;

namespace Isthmus.Router;

/// <summary>
/// The CLI side of an admin request: TLS to a router's LAN port (the router proves itself with its certificate),
/// the router's challenge, then the request with a proof of the router secret. Needs only the cluster directory's
/// cluster file, CA certificate and router secret, and a network path to the router: no shared filesystem.
/// </summary>
public static class RouterAdminClient
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    /// <summary>Sends <paramref name="request"/> to <paramref name="site"/>'s router (at <paramref name="endpoint"/>, default its LAN address).</summary>
    /// <exception cref="UserException">The router cannot be reached (exit 1), refuses the proof (1) or the change (2).</exception>
    public static async Task<DomainTable> SendAsync(ClusterDirectory directory, SiteSettings site, HostPort? endpoint, AdminRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(request);
        var cluster = directory.LoadClusterFile();
        using var ca = directory.LoadCaCertificate();
        var secret = directory.LoadRouterSecret();
        var target = (endpoint ?? site.Lan).ToIPEndPoint();
        var routerName = TlsEndpoints.RouterName(site.Name, cluster.Cluster.Name);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Timeout);
        using var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(target, deadline.Token).ConfigureAwait(false);
            var tls = await TlsEndpoints.ClientAsync(socket, routerName, identity: null,
                PeerCertificateValidator.Callback(ca, routerName), deadline.Token).ConfigureAwait(false);
            await using var channel = new ControlChannel(tls);
            var challenge = await channel.ReceiveAsync(deadline.Token).ConfigureAwait(false);
            if (challenge?.Type != ControlMessage.Challenge || challenge.Nonce is null)
            {
                throw new ProtocolException("the router sent no challenge");
            }

            var text = request.ToJson();
            var proof = AdminRequest.ComputeProof(secret, Convert.FromBase64String(challenge.Nonce), text);
            await channel.SendAsync(new ControlMessage { Type = ControlMessage.Admin, Request = text, Proof = Convert.ToBase64String(proof) }, deadline.Token).ConfigureAwait(false);
            var answer = await channel.ReceiveAsync(deadline.Token).ConfigureAwait(false);
            if (answer?.Type == ControlMessage.Error)
            {
                throw new UserException($"router of site '{site.Name}' refused: {answer.Message} [{answer.Code}]", answer.Code == "bad-change" ? 2 : 1);
            }

            if (answer?.Type != ControlMessage.AdminResult || answer.Table is null)
            {
                throw new ProtocolException("the router sent no admin result (is it older than this isthmus?)");
            }

            return DomainTableCodec.DecodeText(answer.Table);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UserException($"router of site '{site.Name}' at {target} did not answer within {Timeout.TotalSeconds:0} s", 1);
        }
        catch (System.Security.Authentication.AuthenticationException e)
        {
            throw new UserException($"TLS with router {target} failed: {e.InnerException?.Message ?? e.Message} (is this its cluster directory?)", e, 1);
        }
        catch (Exception e) when (e is SocketException or IOException or ProtocolException)
        {
            throw new UserException($"cannot reach router of site '{site.Name}' at {target}: {e.Message} (is 'isthmus router' running there?)", e, 1);
        }
    }
}
