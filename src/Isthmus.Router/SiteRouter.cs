using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Isthmus.Core;
using Isthmus.Core.Metrics;
using Isthmus.Core.Relay;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// One site's router: serves its nodes on the LAN endpoint (TLS control channels and legs, told apart by
/// their first byte) and peer routers on the WAN endpoint, and relays streams between them.
/// </summary>
public sealed class SiteRouter
{
    private readonly RouterContext _context;
    private readonly ILogger _logger;
    private readonly NodeControlHandler _control;
    private readonly LegForwarder _forwarder;
    private readonly PeerLinks _peers;

    public SiteRouter(RouterContext context, ILoggerFactory loggerFactory)
    {
        _context = context;
        _logger = loggerFactory.CreateLogger("isthmus.router");
        var directory = new RouterDirectory(context, loggerFactory.CreateLogger("isthmus.router.directory"));
        var domainLogger = loggerFactory.CreateLogger("isthmus.router.domains");
        var domains = new DomainState(context.StateDirectory, Core.Domains.DomainTable.FromClusterFile(context.Cluster), domainLogger);
        var guard = new DomainGuard(context, domains, directory, new LiveStreams(), domainLogger);
        _peers = new PeerLinks(context, directory, domains, loggerFactory.CreateLogger("isthmus.router.peers"));
        var datagrams = new DatagramSwitch(context, _peers, guard, loggerFactory.CreateLogger("isthmus.router.udp"));
        var admin = new AdminHandler(context, domains, loggerFactory.CreateLogger("isthmus.router.admin"));
        _control = new NodeControlHandler(context, directory, domains, admin, loggerFactory.CreateLogger("isthmus.router.control"));
        _forwarder = new LegForwarder(context, loggerFactory.CreateLogger("isthmus.router.relay"))
        {
            Domains = guard,
            ServeDatagramLeg = datagrams.ServeNodeAsync,
            ServePeerLink = (site, link, ct) =>
            {
                // Datagrams on a link are attributed to the site that dialled it, which its certificate or MAC proved.
                var handler = new PeerDatagramHandler(datagrams, site);
                return _peers.ServeIncomingAsync(site, link, handler.Handle, ct);
            },
        };
    }

    public static RouterContext LoadContext(string clusterDirectory, string siteName, ILoggerFactory loggerFactory)
    {
        var dir = new ClusterDirectory(clusterDirectory);
        var cluster = dir.LoadClusterFile();
        var site = cluster.FindSite(siteName)
            ?? throw new UserException($"site '{siteName}' is not in {dir.ClusterFilePath}; sites: {string.Join(", ", cluster.Sites.Select(s => s.Name))}");
        var identity = dir.LoadRouterIdentity(siteName);
        return new RouterContext
        {
            Cluster = cluster,
            Site = site,
            CaCertificate = dir.LoadCaCertificate(),
            Identity = SslStreamCertificateContext.Create(identity, additionalCertificates: null, offline: true),
            EnrolSecret = dir.LoadEnrolSecret(),
            RouterSecret = dir.LoadRouterSecret(),
            Registry = new NodeRegistry(dir.StateDirectory(siteName), site.Subnet, loggerFactory.CreateLogger("isthmus.router.registry")),
            StateDirectory = dir.StateDirectory(siteName),
        };
    }

    /// <summary>Binds both endpoints (so errors show before "ready"), then serves until cancelled.</summary>
    public async Task RunAsync(IPEndPoint lanBind, IPEndPoint wanBind, IPEndPoint? metricsBind, Action? ready, CancellationToken cancellationToken)
    {
        using var lan = Bind(lanBind, "LAN (--lan)");
        using var wan = lanBind.Equals(wanBind) ? null : Bind(wanBind, "WAN (--wan)");
        using var metrics = metricsBind is null ? null : MetricsEndpoint.Bind(metricsBind);
        _logger.LogInformation("Router {Router} up: subnet {Subnet}, LAN {Lan}, WAN {Wan}, WAN legs {Encryption}",
            _context.Name, _context.Site.Subnet, lan.LocalEndPoint, wan?.LocalEndPoint ?? lan.LocalEndPoint,
            _context.Cluster.Cluster.WanEncryption ? "encrypted (TLS 1.3)" : "cleartext (HMAC-authenticated)");
        ready?.Invoke();
        var loops = new List<Task> { AcceptLoop.RunAsync(lan, (s, ct) => HandleAsync(s, fromWan: wan is null ? null : false, ct), _logger, cancellationToken) };
        if (wan is not null)
        {
            loops.Add(AcceptLoop.RunAsync(wan, (s, ct) => HandleAsync(s, fromWan: true, ct), _logger, cancellationToken));
        }

        loops.Add(_peers.RunAsync(cancellationToken));
        if (metrics is not null)
        {
            _logger.LogInformation("Prometheus metrics on http://{Endpoint}/metrics", metrics.LocalEndPoint);
            var endpoint = new MetricsEndpoint(() => _context.Metrics.Render(_context.Site.Name, _context.Registry.LiveCount), _logger);
            loops.Add(endpoint.RunAsync(metrics, cancellationToken));
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        _logger.LogInformation("Router {Router} stopped", _context.Name);
    }

    private static Socket Bind(IPEndPoint endpoint, string what)
    {
        try
        {
            return AcceptLoop.Listen(endpoint);
        }
        catch (SocketException e)
        {
            throw new UserException($"cannot listen on {what} {endpoint}: {e.Message} (is it an address of this host, and is the port free?)", e, 1);
        }
    }

    /// <param name="fromWan">true: WAN port; false: LAN port; null: one port serves both (told apart by certificates).</param>
    private async Task HandleAsync(Socket socket, bool? fromWan, CancellationToken cancellationToken)
    {
        socket.NoDelay = true;
        var first = await AcceptLoop.PeekFirstByteAsync(socket, _context.HeaderTimeout, cancellationToken).ConfigureAwait(false);
        switch (first)
        {
            case 0x16 when fromWan == true:
                await HandleTlsLegAsync(socket, cancellationToken).ConfigureAwait(false);
                break;
            case 0x16:
                await HandleLanTlsAsync(socket, allowPeerRouters: fromWan is null, cancellationToken).ConfigureAwait(false);
                break;
            case LegHeader.FirstByte when fromWan == false || fromWan is null:
                await _forwarder.HandleLegAsync(new RelayEndpoint(socket), LegSource.Lan, null, cancellationToken).ConfigureAwait(false);
                break;
            case LegHeader.FirstByte:
                await _forwarder.HandleLegAsync(new RelayEndpoint(socket), LegSource.WanCleartext, null, cancellationToken).ConfigureAwait(false);
                break;
            default:
                _logger.LogWarning("Closed connection from {Remote}: it spoke neither TLS nor the leg protocol (first byte {First})", socket.RemoteEndPoint, first);
                socket.Dispose();
                break;
        }
    }

    private async Task HandleTlsLegAsync(Socket socket, CancellationToken cancellationToken)
    {
        var remote = socket.RemoteEndPoint;
        SslStream tls;
        string? peerSite = null;
        try
        {
            tls = await TlsEndpoints.ServerAsync(socket, _context.Identity, requireClientCertificate: true,
                (_, cert, _, _) => ValidatePeerRouter(cert, out peerSite), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException)
        {
            _context.Metrics.LegRefused();
            _logger.LogWarning("Refused WAN connection from {Remote}: TLS authentication failed ({Reason})", remote, e.Message);
            socket.Dispose();
            return;
        }

        await _forwarder.HandleLegAsync(new RelayEndpoint(socket, tls), LegSource.WanTls, peerSite, cancellationToken).ConfigureAwait(false);
    }

    private async Task HandleLanTlsAsync(Socket socket, bool allowPeerRouters, CancellationToken cancellationToken)
    {
        var remote = socket.RemoteEndPoint;
        SslStream tls;
        string? peerSite = null;
        try
        {
            // Nodes present no certificate (they prove the enrol secret inside the channel); routers sharing
            // this port present theirs.
            tls = await TlsEndpoints.ServerAsync(socket, _context.Identity, requireClientCertificate: false,
                (_, cert, _, _) => cert is null || (allowPeerRouters && ValidatePeerRouter(cert, out peerSite)), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException)
        {
            _logger.LogWarning("Refused LAN connection from {Remote}: TLS handshake failed ({Reason})", remote, e.Message);
            socket.Dispose();
            return;
        }

        if (peerSite is not null)
        {
            await _forwarder.HandleLegAsync(new RelayEndpoint(socket, tls), LegSource.WanTls, peerSite, cancellationToken).ConfigureAwait(false);
            return;
        }

        await _control.RunAsync(socket, tls, cancellationToken).ConfigureAwait(false);
    }

    private bool ValidatePeerRouter(System.Security.Cryptography.X509Certificates.X509Certificate? presented, out string? site)
    {
        site = null;
        if (presented is null)
        {
            return false;
        }

        // One chain build per handshake, then the name decides which site's router this is.
        using var cert = new System.Security.Cryptography.X509Certificates.X509Certificate2(presented);
        if (!PeerCertificateValidator.Validate(cert, _context.CaCertificate, expectedDnsName: null, out var reason))
        {
            _logger.LogWarning("Peer certificate {Subject} refused: {Reason}", cert.Subject, reason);
            return false;
        }

        site = _context.Cluster.Sites
            .Where(s => s.Name != _context.Site.Name)
            .FirstOrDefault(s => cert.MatchesHostname(TlsEndpoints.RouterName(s.Name, _context.Cluster.Cluster.Name), allowWildcards: false))?.Name;
        if (site is null)
        {
            _logger.LogWarning("Peer certificate {Subject} refused: not a router of another site of this cluster", cert.Subject);
        }

        return site is not null;
    }
}

/// <summary>Binds datagram frames from one peer link to the site that link belongs to.</summary>
internal sealed class PeerDatagramHandler(DatagramSwitch datagrams, string site)
{
    public void Handle(LinkFrameType type, ReadOnlySpan<byte> body) => datagrams.FromPeer(site, body);
}

/// <summary>Where a leg came from, which decides its key and what its source address may be.</summary>
public enum LegSource
{
    Lan,
    WanTls,
    WanCleartext,
}
