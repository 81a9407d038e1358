using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Isthmus.Core;
using Isthmus.Core.Logging;
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
    private readonly RateLimitedLog _offenders;

    public SiteRouter(RouterContext context, ILoggerFactory loggerFactory)
    {
        _context = context;
        _logger = loggerFactory.CreateLogger("isthmus.router");
        _offenders = new RateLimitedLog(_logger);
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
        context.Metrics.TrunksUp = () => _forwarder.Wan.Trunks.Count;
    }

    public static RouterContext LoadContext(string clusterDirectory, string siteName, ILoggerFactory loggerFactory)
    {
        var dir = new ClusterDirectory(clusterDirectory);
        var cluster = dir.LoadClusterFile();
        var site = cluster.FindSite(siteName)
            ?? throw new UserException($"site '{siteName}' is not in {dir.ClusterFilePath}; sites: {string.Join(", ", cluster.Sites.Select(s => s.Name))}");
        var identity = dir.LoadRouterIdentity(siteName);
        var ca = dir.LoadCaCertificate();
        CheckOwnCertificate(identity, ca, TlsEndpoints.RouterName(siteName, cluster.Cluster.Name), dir.RouterCertificatePath(siteName), dir.DisplayPath, siteName,
            loggerFactory.CreateLogger("isthmus.router"));
        return new RouterContext
        {
            Cluster = cluster,
            Site = site,
            CaCertificate = ca,
            Identity = SslStreamCertificateContext.Create(identity, additionalCertificates: null, offline: true),
            EnrolSecret = dir.LoadEnrolSecret(),
            RouterSecret = dir.LoadRouterSecret(),
            Registry = new NodeRegistry(dir.StateDirectory(siteName), site.Subnet, loggerFactory.CreateLogger("isthmus.router.registry")),
            StateDirectory = dir.StateDirectory(siteName),
        };
    }

    /// <summary>How long before its end a router certificate is reported as expiring (a warning at every start).</summary>
    public static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(30);

    /// <summary>
    /// Refuses to start with a certificate every peer would refuse (expired, not yet valid, from another CA after
    /// a rotation, another name), saying how to fix it, rather than start and have every TLS handshake fail.
    /// </summary>
    internal static void CheckOwnCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 identity,
        System.Security.Cryptography.X509Certificates.X509Certificate2 ca, string name, string path, string clusterDirectory, string site, ILogger logger)
    {
        if (!PeerCertificateValidator.Validate(identity, ca, name, out var reason))
        {
            throw new UserException($"{path}: {reason}; peers would refuse it. Issue a new one with "
                + $"'isthmus cluster renew-router {clusterDirectory} {site}' and start the router again");
        }

        var left = identity.NotAfter.ToUniversalTime() - DateTime.UtcNow;
        if (left < ExpiryWarning)
        {
            logger.LogWarning("Router certificate {Path} expires on {Date:yyyy-MM-dd} ({Days:0} days): renew it with 'isthmus cluster renew-router {Dir} {Site}'",
                path, identity.NotAfter.ToUniversalTime(), left.TotalDays, clusterDirectory, site);
        }
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
        using var lanGuard = NewGuard();
        using var wanGuard = NewGuard();
        var loops = new List<Task> { AcceptLoop.RunAsync(lan, (s, ct) => HandleAsync(s, lanGuard, fromWan: wan is null ? null : false, ct), _logger, cancellationToken) };
        if (wan is not null)
        {
            loops.Add(AcceptLoop.RunAsync(wan, (s, ct) => HandleAsync(s, wanGuard, fromWan: true, ct), _logger, cancellationToken));
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

    private HandshakeGuard NewGuard()
    {
        var guard = new HandshakeGuard(_context.MaxPendingHandshakes, _context.HeaderTimeout);
        _context.Metrics.Track(guard);
        return guard;
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
    private async Task HandleAsync(Socket socket, HandshakeGuard guard, bool? fromWan, CancellationToken cancellationToken)
    {
        // Admitted before the first read: the guard's deadline covers everything up to authentication.
        using var handshake = guard.Admit(socket);
        socket.NoDelay = true;
        if (fromWan == true && _context.WanEmulator?.IsOut == true)
        {
            // An emulated outage: the WAN is down, so nothing reaches this router from it.
            RelayEndpoint.Abort(socket);
            return;
        }

        // The guard's deadline ends a silent connection; the peek's own timeout is only a backstop.
        var first = await AcceptLoop.PeekFirstByteAsync(socket, _context.HeaderTimeout + TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        switch (first)
        {
            case 0x16 when fromWan == true:
                await HandleTlsLegAsync(socket, handshake, cancellationToken).ConfigureAwait(false);
                break;
            case 0x16:
                await HandleLanTlsAsync(socket, handshake, allowPeerRouters: fromWan is null, cancellationToken).ConfigureAwait(false);
                break;
            case LegHeader.FirstByte when fromWan == false || fromWan is null:
                await _forwarder.HandleLegAsync(new RelayEndpoint(socket), LegSource.Lan, null, handshake.Authenticated, cancellationToken).ConfigureAwait(false);
                break;
            case LegHeader.FirstByte:
                await _forwarder.HandleLegAsync(new RelayEndpoint(socket, _context.WanEmulator?.Wrap(socket)), LegSource.WanCleartext, null, handshake.Authenticated, cancellationToken).ConfigureAwait(false);
                break;
            default:
                _context.Metrics.HandshakeFailed();
                _offenders.Warning("Closed connection from {Remote}: {Reason}", AcceptLoop.Describe(socket), first switch
                {
                    -1 when handshake.WasShutDown => "nothing sent within the handshake deadline, or too many pending handshakes",
                    -1 => "closed or silent before its first byte",
                    _ => $"it spoke neither TLS nor the leg protocol (first byte 0x{first:x2})",
                });
                RelayEndpoint.Abort(socket);
                break;
        }
    }

    /// <summary>A TLS server handshake bounded by the handshake deadline; null (logged, counted, closed) if it fails.</summary>
    private async Task<SslStream?> AcceptTlsAsync(Socket socket, PendingHandshake handshake, Func<CancellationToken, Task<SslStream>> serve,
        string what, CancellationToken cancellationToken)
    {
        var remote = AcceptLoop.Describe(socket);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_context.HeaderTimeout);
        try
        {
            return await serve(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            _context.Metrics.HandshakeFailed();
            var reason = e is OperationCanceledException || handshake.WasShutDown
                ? $"no complete TLS handshake within {_context.HeaderTimeout.TotalSeconds:0} s (or too many pending handshakes)"
                : e.Message;
            _offenders.Warning("Refused {What} connection from {Remote}: TLS handshake failed ({Reason})", what, remote, reason);
            RelayEndpoint.Abort(socket);
            return null;
        }
    }

    private async Task HandleTlsLegAsync(Socket socket, PendingHandshake handshake, CancellationToken cancellationToken)
    {
        string? peerSite = null;
        // A peer router's connection carries bulk data: its TLS records are batched (WanServerAsync).
        var tls = await AcceptTlsAsync(socket, handshake,
            ct => TlsEndpoints.WanServerAsync(_context.WanEmulator?.Wrap(socket) ?? new NetworkStream(socket, ownsSocket: false), _context.Identity,
                (_, cert, _, _) => ValidatePeerRouter(cert, out peerSite), ct),
            "WAN", cancellationToken).ConfigureAwait(false);
        if (tls is null)
        {
            _context.Metrics.LegRefused();
            return;
        }

        await _forwarder.HandleLegAsync(new RelayEndpoint(socket, tls), LegSource.WanTls, peerSite, handshake.Authenticated, cancellationToken).ConfigureAwait(false);
    }

    private async Task HandleLanTlsAsync(Socket socket, PendingHandshake handshake, bool allowPeerRouters, CancellationToken cancellationToken)
    {
        string? peerSite = null;
        // Nodes present no certificate (they prove the enrol secret inside the channel); routers sharing
        // this port present theirs.
        var tls = await AcceptTlsAsync(socket, handshake,
            ct => TlsEndpoints.ServerAsync(socket, _context.Identity, requireClientCertificate: false,
                (_, cert, _, _) => cert is null || (allowPeerRouters && ValidatePeerRouter(cert, out peerSite)), ct),
            "LAN", cancellationToken).ConfigureAwait(false);
        if (tls is null)
        {
            return;
        }

        if (peerSite is not null)
        {
            await _forwarder.HandleLegAsync(new RelayEndpoint(socket, tls), LegSource.WanTls, peerSite, handshake.Authenticated, cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            await _control.RunAsync(socket, tls, handshake.Authenticated, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // The channel's TLS stream does not own the socket: without this, every ended control channel (a node
            // that left, an enrolment refused, garbage inside TLS) kept its connection open until a GC finalised it,
            // and an offender was never disconnected (found by the listener abuse test).
            socket.Dispose();
        }
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
            _offenders.Warning("Peer certificate {Subject} refused: {Reason}", cert.Subject, reason);
            return false;
        }

        site = _context.Cluster.Sites
            .Where(s => s.Name != _context.Site.Name)
            .FirstOrDefault(s => cert.MatchesHostname(TlsEndpoints.RouterName(s.Name, _context.Cluster.Cluster.Name), allowWildcards: false))?.Name;
        if (site is null)
        {
            _offenders.Warning("Peer certificate {Subject} refused: not a router of another site of this cluster", cert.Subject);
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
