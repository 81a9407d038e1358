using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using Isthmus.Core.Addressing;
using Isthmus.Core.Logging;
using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Isthmus.Core.Wire;
using Isthmus.Router.Resumable;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// Takes an accepted leg, authenticates its header, opens the next leg (to a node of this site or to the
/// router of the destination's site), answers with the next hop's result, then relays bytes.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "lives as long as the router process")]
internal sealed class LegForwarder(RouterContext context, ILogger logger)
{
    /// <summary>
    /// New WAN stream legs (TCP + TLS handshakes) dialled at once. A burst of connects (a program opening a
    /// thousand sockets in a loop) would otherwise start a thousand handshakes together: on a small head node
    /// none finishes within the peer's handshake deadline and the peer's guard sheds them. Queued here, they
    /// complete in order at the rate the CPUs allow; the wait counts against the dial timeout.
    /// </summary>
    private const int ConcurrentWanDials = 32;

    private readonly RateLimitedLog _offenders = new(logger);
    private readonly SemaphoreSlim _wanDialSlots = new(ConcurrentWanDials, ConcurrentWanDials);

    /// <summary>Inter-site streams on resumable WAN legs (carried by WAN trunks unless <c>--wan-trunks 0</c>).</summary>
    public WanStreams Wan { get; } = new(context, new Trunks.WanTrunks(context, logger), logger);

    /// <summary>Serves a node's datagram leg once authenticated (set by the router).</summary>
    public Func<NodeSession, RelayEndpoint, CancellationToken, Task>? ServeDatagramLeg { get; set; }

    /// <summary>Serves a peer router's link once authenticated (set by the router): site name, link.</summary>
    public Func<string, RelayEndpoint, CancellationToken, Task>? ServePeerLink { get; set; }

    /// <summary>Communication domains: refuses streams between nodes that share none, registers relayed streams (set by the router).</summary>
    public DomainGuard? Domains { get; set; }

    /// <summary>A datagram leg (from a node, on the LAN) or a peer link (from a router, on the WAN): answer, then hand over.</summary>
    private async Task ServeLinkAsync(LegHeader header, RelayEndpoint inbound, LegSource source, CancellationToken cancellationToken)
    {
        Func<CancellationToken, Task>? serve = null;
        if (header.Kind == LegKind.Datagram && source == LegSource.Lan && context.Registry.TryGetSession(header.KeyId, out var session) && ServeDatagramLeg is { } node)
        {
            serve = ct => node(session, inbound, ct);
        }
        else if (header.Kind is LegKind.PeerLink or LegKind.Trunk && source != LegSource.Lan
            && header.Source.Address == context.Cluster.SiteForAddress(header.Source.Address)?.Subnet.Network + 1)
        {
            var site = context.Cluster.SiteForAddress(header.Source.Address)!.Name;
            Wan.PeerEpoch(site, header.KeyId);
            if (header.Kind == LegKind.Trunk)
            {
                // Each stream on the trunk is a leg from that peer router, authenticated by its own header like one
                // on the WAN port; the trunk's certificate or MAC named the site.
                serve = ct => Wan.Trunks.ServeAsync(site, inbound, (leg, ct2) => HandleLegAsync(leg, source, site, authenticated: null, ct2), ct);
            }
            else if (ServePeerLink is { } peer)
            {
                serve = ct => peer(site, inbound, ct);
            }
        }

        if (serve is null)
        {
            context.Metrics.LegRefused();
            _offenders.Warning("Refused {Kind} leg from {Remote}: not allowed from there", header.Kind, inbound.RemoteDescription);
            await LegConnector.TryReplyAsync(inbound, LegStatus.Refused, cancellationToken).ConfigureAwait(false);
            inbound.Abort();
            return;
        }

        if (!await LegConnector.TryReplyAsync(inbound, LegStatus.Ok, cancellationToken).ConfigureAwait(false))
        {
            inbound.Abort();
            return;
        }

        await serve(cancellationToken).ConfigureAwait(false);
    }

    /// <param name="tlsPeerSite">The site whose router certificate the TLS peer presented (WAN legs over TLS), else null.</param>
    /// <param name="authenticated">Called once the header is authenticated (ends the listener's handshake deadline).</param>
    public async Task HandleLegAsync(RelayEndpoint inbound, LegSource source, string? tlsPeerSite, Action? authenticated, CancellationToken cancellationToken)
    {
        LegHeader header;
        byte[] raw;
        try
        {
            (header, raw) = await LegConnector.ReadHeaderAsync(inbound.Stream, context.HeaderTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or IOException or SocketException)
        {
            context.Metrics.LegRefused();
            _offenders.Warning("Dropped leg from {Remote}: {Reason}", inbound.RemoteDescription, e.Message);
            inbound.Abort();
            return;
        }

        // A program's non-blocking connect (its shim sent the header on the program's socket): no reply, ever; a
        // failure resets the connection. Read before authentication, so a refused header gets no reply either.
        var noReply = source == LegSource.Lan && header.Kind == LegKind.TcpStream && (header.Flags & LegFlags.NoReply) != 0;
        var refusal = Authenticate(header, raw, source, tlsPeerSite);
        if (refusal is not null)
        {
            context.Metrics.LegRefused();
            _offenders.Warning("Refused leg {Stream} {Src} -> {Dst} from {Remote}: {Reason}", header.StreamId, header.Source, header.Destination, inbound.RemoteDescription, refusal);
            if (!noReply)
            {
                await LegConnector.TryReplyAsync(inbound, LegStatus.AuthenticationFailed, cancellationToken).ConfigureAwait(false);
            }

            inbound.Abort();
            return;
        }

        authenticated?.Invoke();
        if (source == LegSource.Lan && header.Kind == LegKind.TcpStream && header.Source.Port == 0 && inbound.Socket?.RemoteEndPoint is System.Net.IPEndPoint program)
        {
            // A program's own socket, connected here by its shim with its agent's header: the stream's source port is
            // the connection's own, which is what the program's getsockname shows.
            header = header with { Source = new VirtualEndpoint(header.Source.Address, (ushort)program.Port) };
        }

        if (header.Kind != LegKind.TcpStream)
        {
            await ServeLinkAsync(header, inbound, source, cancellationToken).ConfigureAwait(false);
            return;
        }

        var peerSite = source == LegSource.Lan ? null : context.Cluster.SiteForAddress(header.Source.Address)!.Name;
        // A resume continues a stream the domains allowed; a change since then has ended it (LiveStreams).
        if ((header.Flags & ResumableFlags.Resume) != 0)
        {
            await Wan.ServeResumeAsync(header, peerSite!, inbound, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (Domains?.CheckStream(header) is not null)
        {
            // EHOSTUNREACH to the program: a node outside its domains looks like a VIP nobody holds.
            await RefuseAsync(inbound, LegStatus.HostUnreachable, noReply, cancellationToken).ConfigureAwait(false);
            return;
        }

        var wanHeader = source == LegSource.Lan && !context.Site.Subnet.Contains(header.Destination.Address)
            ? Wan.WanHeader(header, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) : null;
        var dial = await DialNextHopAsync(header, wanHeader, source, cancellationToken).ConfigureAwait(false);
        if (dial.Endpoint is null)
        {
            context.Metrics.StreamFailed();
            logger.LogInformation("Stream {Stream} {Src} -> {Dst} not opened: {Status} ({Detail})", header.StreamId, header.Source, header.Destination, dial.Status, dial.Detail);
            await RefuseAsync(inbound, dial.Status, noReply, cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            if (!noReply)
            {
                await LegConnector.ReplyAsync(inbound.Stream, LegStatus.Ok, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            dial.Endpoint.Abort();
            inbound.Abort();
            return;
        }

        context.Metrics.StreamOpened();
        logger.LogDebug("Stream {Stream} {Src} -> {Dst} open", header.StreamId, header.Source, header.Destination);
        using var live = Domains?.Track(header, inbound, dial.Endpoint);
        if (wanHeader is not null)
        {
            await Wan.RunDialerAsync(wanHeader, context.Cluster.SiteForAddress(header.Destination.Address)!, inbound, dial.Endpoint, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (peerSite is not null && (header.Flags & ResumableFlags.Framed) != 0)
        {
            await Wan.RunAcceptorAsync(header, peerSite, inbound, dial.Endpoint, cancellationToken).ConfigureAwait(false);
            return;
        }

        var result = await StreamRelay.RunAsync(inbound, dial.Endpoint, cancellationToken).ConfigureAwait(false);
        context.Metrics.Relayed(result.BytesAToB + result.BytesBToA);
        logger.LogDebug("Stream {Stream} closed: {Up} B up, {Down} B down{Failed}", header.StreamId, result.BytesAToB, result.BytesBToA, result.Failed ? ", reset" : "");
    }

    /// <summary>The stream cannot open: the status as the leg reply, or, where no reply may be sent, a reset.</summary>
    private static async Task RefuseAsync(RelayEndpoint inbound, LegStatus status, bool noReply, CancellationToken cancellationToken)
    {
        if (noReply)
        {
            inbound.Abort();
            return;
        }

        await LegConnector.TryReplyAsync(inbound, status, cancellationToken).ConfigureAwait(false);
        await inbound.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Null if the leg may pass; otherwise why not.</summary>
    private string? Authenticate(LegHeader header, byte[] raw, LegSource source, string? peerSite)
    {
        switch (source)
        {
            case LegSource.Lan:
                if (!context.Registry.TryGetSession(header.KeyId, out var session))
                {
                    return "unknown node session (not enrolled, or its lease ended)";
                }

                if (!LegHeader.VerifyMac(raw, session.Key))
                {
                    return $"bad MAC for node {session.Name}";
                }

                if (header.Source.Address != session.Vip)
                {
                    return $"node {session.Name} ({IPv4.Format(session.Vip)}) claimed source {header.Source}";
                }

                break;
            case LegSource.WanTls:
            case LegSource.WanCleartext:
                if (source == LegSource.WanCleartext && context.Cluster.Cluster.WanEncryption)
                {
                    return "cleartext leg, but this cluster requires encrypted WAN legs";
                }

                if (!LegHeader.VerifyMac(raw, context.RouterSecret))
                {
                    return "bad MAC for a router leg";
                }

                var origin = context.Cluster.SiteForAddress(header.Source.Address);
                if (origin is null || origin.Name == context.Site.Name || (peerSite is not null && origin.Name != peerSite))
                {
                    return $"source {header.Source} is not in the subnet of the sending router's site";
                }

                if (!context.Site.Subnet.Contains(header.Destination.Address))
                {
                    return $"destination {header.Destination} is not in this site's subnet (routers do not transit)";
                }

                break;
        }

        if (!header.IsFresh(DateTimeOffset.UtcNow))
        {
            return "stale header (clocks differ by more than the freshness window, or a replay)";
        }

        if ((header.Flags & ResumableFlags.Resume) != 0)
        {
            // A resume names a stream that exists already; the stream itself refuses headers not newer than its last.
            return source == LegSource.Lan ? "resume legs are accepted from routers only" : null;
        }

        return context.Replays.TryAccept(header.StreamId) ? null : "replayed stream id";
    }

    private async Task<LegDialResult> DialNextHopAsync(LegHeader header, LegHeader? wanHeader, LegSource source, CancellationToken cancellationToken)
    {
        var dst = header.Destination.Address;
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (context.Site.Subnet.Contains(dst))
        {
            if (await context.Registry.LiveOrReturningAsync(dst, cancellationToken).ConfigureAwait(false) is not { } node)
            {
                return new LegDialResult(dst == context.Registry.RouterVip ? LegStatus.Refused : LegStatus.HostUnreachable, null, $"no node holds {IPv4.Format(dst)} now");
            }

            if (source != LegSource.Lan && context.Cluster.Cluster.DirectLan && node.DirectEndpoint is { } direct)
            {
                // A stream from another site goes straight to the program: the agent's direct listener checks this
                // grant (keyed by the node's session key, the client's real source port in it), rings the listener
                // and hands our LAN socket to the accepting program, so the agent relays nothing. Where the program
                // does not adopt, the agent relays as on its data endpoint.
                // The grant has a stream id of its own: the agent's replay guard, shared by both of its listeners, has seen it
                // once it verified the grant, so a fallback to the data endpoint with the same id would be refused as a replay.
                var grant = header with { Kind = LegKind.DirectStream, Flags = 0, TimestampMs = now, KeyId = node.Id, StreamId = Guid.NewGuid() };
                var straight = await LegConnector.DialAsync(direct, grant.ToBytes(node.Key), secure: null, context.DialTimeout, cancellationToken).ConfigureAwait(false);
                if (straight.Status is not (LegStatus.HostUnreachable or LegStatus.TimedOut or LegStatus.AuthenticationFailed))
                {
                    return straight;
                }

                // No direct listener there now, or it does not know this session yet (re-enrolling): the data endpoint
                // waits for a re-enrolment and is always there.
                logger.LogInformation("Stream {Stream}: direct listener of {Node} answered {Status} ({Detail}); using its data endpoint", header.StreamId, node.Name, straight.Status, straight.Detail);
            }

            var next = header with { Flags = 0, TimestampMs = now, KeyId = node.Id };
            return await LegConnector.DialAsync(node.DataEndpoint, next.ToBytes(node.Key), secure: null, context.DialTimeout, cancellationToken).ConfigureAwait(false);
        }

        if (source != LegSource.Lan)
        {
            return new LegDialResult(LegStatus.NetworkUnreachable, null, "no transit through this router");
        }

        var site = context.Cluster.SiteForAddress(dst);
        if (site is null)
        {
            return new LegDialResult(LegStatus.NetworkUnreachable, null, $"{IPv4.Format(dst)} is in no site's subnet");
        }

        if (Wan.Trunks.Enabled)
        {
            // A virtual stream on a live trunk costs no handshake, so there is nothing to queue for.
            return await Wan.Trunks.OpenLegAsync(site, wanHeader!.ToBytes(context.RouterSecret), context.DialTimeout, cancellationToken).ConfigureAwait(false);
        }

        var started = Stopwatch.GetTimestamp();
        if (!await _wanDialSlots.WaitAsync(context.DialTimeout, cancellationToken).ConfigureAwait(false))
        {
            return new LegDialResult(LegStatus.TimedOut, null, $"no WAN dial slot to site {site.Name} within {context.DialTimeout.TotalSeconds:0} s ({ConcurrentWanDials} dials in flight)");
        }

        try
        {
            // The dial gets what the queue left of the one dial timeout.
            var left = context.DialTimeout - Stopwatch.GetElapsedTime(started);
            return left <= TimeSpan.Zero
                ? new LegDialResult(LegStatus.TimedOut, null, $"no WAN dial slot to site {site.Name} within {context.DialTimeout.TotalSeconds:0} s")
                : await LegConnector.DialAsync(site.Wan.ToIPEndPoint(), wanHeader!.ToBytes(context.RouterSecret), context.WanSecurityFor(site, logger),
                    left, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _wanDialSlots.Release();
        }
    }
}
