using System.Collections.Concurrent;
using Isthmus.Core.Addressing;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// Routes datagrams: from a node's datagram leg or a peer router's link to the destination node's datagram
/// leg (this site) or to the destination site's peer link. Every queue is bounded and a full one drops,
/// as an IP router does; a datagram whose source is not its sender's VIP (or subnet) is dropped as spoofed.
/// </summary>
internal sealed class DatagramSwitch(RouterContext context, PeerLinks peers, DomainGuard guard, ILogger logger)
{
    private readonly ConcurrentDictionary<uint, NodeDatagramLeg> _nodes = new();

    /// <summary>Serves an authenticated datagram leg from <paramref name="session"/>'s agent until either side ends it.</summary>
    public async Task ServeNodeAsync(NodeSession session, RelayEndpoint leg, CancellationToken cancellationToken)
    {
        var writer = new LinkFrameWriter();
        var registration = new NodeDatagramLeg(session.Id, writer);
        _nodes[session.Vip] = registration;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Ended.Token);
        logger.LogDebug("Datagram leg of node {Node} open", session.Name);
        var reason = "closed";
        try
        {
            var writing = writer.RunAsync(leg.Stream, linked.Token);
            var reading = new LinkFrameReader(leg.Stream).RunAsync((type, body) => FromNode(session, type, body), linked.Token);
            var first = await Task.WhenAny(writing, reading).ConfigureAwait(false);
            await linked.CancelAsync().ConfigureAwait(false);
            await first.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ProtocolException or OperationCanceledException)
        {
            reason = e is OperationCanceledException ? "session ended" : e.Message;
        }
        finally
        {
            _nodes.TryRemove(new KeyValuePair<uint, NodeDatagramLeg>(session.Vip, registration));
            writer.Complete();
            leg.Abort();
            logger.LogDebug("Datagram leg of node {Node} ended: {Reason}", session.Name, reason);
        }
    }

    /// <summary>A datagram frame body from the peer router of <paramref name="site"/>.</summary>
    public void FromPeer(string site, ReadOnlySpan<byte> body)
    {
        if (!LinkFrame.TryParseDatagram(body, out var src, out var dst, out _))
        {
            throw new ProtocolException($"malformed datagram frame from site {site}");
        }

        if (context.Cluster.SiteForAddress(src.Address)?.Name != site || !context.Site.Subnet.Contains(dst.Address))
        {
            Drop($"from site {site}: {src} -> {dst} is not from its subnet to ours");
            return;
        }

        // The source's router checked already; checked again here, where the destination's identity is certain.
        if (!guard.AllowDatagram(src, dst))
        {
            return;
        }

        DeliverLocal(dst, body);
    }

    private void FromNode(NodeSession session, LinkFrameType type, ReadOnlySpan<byte> body)
    {
        if (type != LinkFrameType.Datagram || !LinkFrame.TryParseDatagram(body, out var src, out var dst, out _))
        {
            throw new ProtocolException($"node {session.Name} sent a malformed datagram frame (type {type})");
        }

        if (src.Address != session.Vip)
        {
            Drop($"node {session.Name} ({IPv4.Format(session.Vip)}) claimed source {src}");
            return;
        }

        if (!guard.AllowDatagram(src, dst))
        {
            return;
        }

        if (context.Site.Subnet.Contains(dst.Address))
        {
            DeliverLocal(dst, body);
            return;
        }

        var site = context.Cluster.SiteForAddress(dst.Address);
        if (site is null)
        {
            Drop($"{src} -> {dst}: in no site's subnet");
            return;
        }

        if (peers.TrySend(site.Name, LinkFrame.Create(LinkFrameType.Datagram, body)))
        {
            context.Metrics.DatagramForwarded();
        }
        else
        {
            Drop($"{src} -> {dst}: link to site {site.Name} down or full");
        }
    }

    private void DeliverLocal(VirtualEndpoint dst, ReadOnlySpan<byte> body)
    {
        if (_nodes.TryGetValue(dst.Address, out var node) && node.Writer.TrySend(LinkFrame.Create(LinkFrameType.Datagram, body)))
        {
            context.Metrics.DatagramForwarded();
            return;
        }

        Drop($"to {dst}: no datagram leg of that node, or its queue is full");
    }

    private void Drop(string why)
    {
        context.Metrics.DatagramDropped();
        logger.LogDebug("Dropped datagram {Why}", why);
    }

    private sealed record NodeDatagramLeg(ulong SessionId, LinkFrameWriter Writer);
}
