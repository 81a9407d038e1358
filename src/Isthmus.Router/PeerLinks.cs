using System.Collections.Concurrent;
using System.Net.Sockets;
using Isthmus.Core.Config;
using Isthmus.Core.Naming;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// Persistent links to the other sites' routers, one per direction: this router dials every peer and sends on
/// its own link (this site's directory, then datagrams), and reads what peers send on the links they dialled.
/// One direction per connection keeps both ends symmetric: no tie-breaking, no crossed dials. Links come back
/// with backoff (200 ms doubling to 5 s) after any failure. The domain table travels the same way: sent when a
/// link comes up and after every change (made here or adopted from a peer), and adopted from a peer when newer,
/// so a change reaches every router directly from where it was made, and any router that missed it gets it
/// from the first peer whose link comes back.
/// </summary>
internal sealed class PeerLinks
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(5);
    private readonly RouterContext _context;
    private readonly RouterDirectory _directory;
    private readonly DomainState _domains;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, LinkFrameWriter> _outgoing = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _wake = new(StringComparer.Ordinal);

    public PeerLinks(RouterContext context, RouterDirectory directory, DomainState domains, ILogger logger)
    {
        _context = context;
        _directory = directory;
        _domains = domains;
        _logger = logger;
        directory.LocalChanged += AnnounceDirectory;
        domains.Changed += (_, current) => Announce(DomainsFrame(current));
    }

    /// <summary>Keeps an outgoing link to every other site until cancelled.</summary>
    public Task RunAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_context.Cluster.Sites.Where(s => s.Name != _context.Site.Name).Select(s => MaintainAsync(s, cancellationToken)));

    /// <summary>Queues a frame on the link to <paramref name="site"/>; false if that link is down or full.</summary>
    public bool TrySend(string site, byte[] frame) =>
        _outgoing.TryGetValue(site, out var writer) && (_context.WanEmulator?.DropDatagram() == true || writer.TrySend(frame)); // emulated loss: the WAN ate it

    /// <summary>Reads an authenticated incoming link from <paramref name="site"/>'s router until it ends.</summary>
    public async Task ServeIncomingAsync(string site, RelayEndpoint link, LinkFrameReader.FrameHandler onDatagram, CancellationToken cancellationToken)
    {
        _logger.LogInformation("Peer link from site {Site} up", site);
        // The peer is evidently up: if our link to it is waiting out a backoff, try now, so that both
        // directories converge as soon as the second router of a pair starts.
        Wake(site);
        var reason = "closed by the peer";
        try
        {
            await new LinkFrameReader(link.Stream).RunAsync((type, body) =>
            {
                switch (type)
                {
                    case LinkFrameType.Directory:
                        var entries = DirectoryCodec.Decode(body);
                        _directory.UpdateSite(site, entries);
                        _logger.LogDebug("Directory from site {Site}: {Count} nodes", site, entries.Count);
                        break;
                    case LinkFrameType.Datagram:
                        onDatagram(type, body);
                        break;
                    case LinkFrameType.Domains:
                        var table = Core.Domains.DomainTableCodec.Decode(body);
                        if (!_domains.TryAdopt(table, $"from site {site}"))
                        {
                            _logger.LogDebug("Domain table version {Version} from site {Site}: not newer than ours", table.Version, site);
                        }

                        break;
                    default:
                        throw new ProtocolException($"unknown frame type {(byte)type}");
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ProtocolException or OperationCanceledException)
        {
            reason = e is OperationCanceledException ? "router stopping" : e.Message;
        }
        finally
        {
            link.Abort();
            _logger.LogInformation("Peer link from site {Site} down: {Reason}", site, reason);
        }
    }

    private async Task MaintainAsync(SiteSettings site, CancellationToken cancellationToken)
    {
        var delay = FirstRetry;
        while (!cancellationToken.IsCancellationRequested)
        {
            var dial = await DialAsync(site, cancellationToken).ConfigureAwait(false);
            if (dial.Endpoint is null)
            {
                _logger.LogDebug("Peer link to site {Site} not up: {Status} ({Detail}); retrying in {Delay} ms", site.Name, dial.Status, dial.Detail, (int)delay.TotalMilliseconds);
                try
                {
                    await WakeSignal(site.Name).WaitAsync(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetry.Ticks));
                continue;
            }

            delay = FirstRetry;
            await RunLinkAsync(site, dial.Endpoint, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task RunLinkAsync(SiteSettings site, RelayEndpoint link, CancellationToken cancellationToken)
    {
        var writer = new LinkFrameWriter();
        writer.TrySend(DirectoryFrame());
        _outgoing[site.Name] = writer;
        // Read after registering: a change made meanwhile is either announced on this writer or read here.
        writer.TrySend(DomainsFrame(_domains.Current));
        _logger.LogInformation("Peer link to site {Site} up", site.Name);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reason = "closed by the peer";
        try
        {
            var writing = writer.RunAsync(link.Stream, linked.Token);
            // Nothing comes back on our own link; a read returning is how we notice the peer closed it.
            var watching = link.Stream.ReadAsync(new byte[1], linked.Token).AsTask();
            var first = await Task.WhenAny(writing, watching).ConfigureAwait(false);
            await linked.CancelAsync().ConfigureAwait(false);
            await first.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            reason = e is OperationCanceledException ? "router stopping" : e.Message;
        }
        finally
        {
            _outgoing.TryRemove(new KeyValuePair<string, LinkFrameWriter>(site.Name, writer));
            writer.Complete();
            link.Abort();
            if (!cancellationToken.IsCancellationRequested)
            {
                _logger.LogWarning("Peer link to site {Site} down: {Reason}; reconnecting", site.Name, reason);
            }
        }
    }

    private Task<LegDialResult> DialAsync(SiteSettings site, CancellationToken cancellationToken)
    {
        var header = new LegHeader(LegKind.PeerLink, 0, Guid.NewGuid(),
            new VirtualEndpoint(_context.Registry.RouterVip, 0), new VirtualEndpoint(site.Subnet.Network + 1, 0),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), _context.Epoch).ToBytes(_context.RouterSecret);
        return LegConnector.DialAsync(site.Wan.ToIPEndPoint(), header, _context.WanSecurityFor(site, _logger), _context.DialTimeout, cancellationToken);
    }

    private SemaphoreSlim WakeSignal(string site) => _wake.GetOrAdd(site, _ => new SemaphoreSlim(0, 1));

    private void Wake(string site)
    {
        try
        {
            WakeSignal(site).Release();
        }
        catch (SemaphoreFullException)
        {
            // already signalled
        }
    }

    private byte[] DirectoryFrame() => LinkFrame.Create(LinkFrameType.Directory, DirectoryCodec.Encode(_directory.LocalEntries()));

    private static byte[] DomainsFrame(Core.Domains.DomainTable table) => LinkFrame.Create(LinkFrameType.Domains, Core.Domains.DomainTableCodec.Encode(table));

    private void AnnounceDirectory() => Announce(DirectoryFrame());

    private void Announce(byte[] frame)
    {
        foreach (var writer in _outgoing.Values)
        {
            writer.TrySend(frame);
        }
    }
}
