using Isthmus.Core.Config;
using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Isthmus.Core.Relay.Trunks;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router.Trunks;

/// <summary>
/// WAN trunks: a few long-lived connections (TLS unless the cluster uses cleartext WAN legs) from this router to
/// each peer router, each carrying many stream legs. A new inter-site stream, or the resume of one, opens a
/// virtual stream on a trunk and sends its usual leg header there, so it costs one WAN round trip and no TCP or
/// TLS handshake, and an idle stream holds no TLS state. Like peer links, a trunk carries streams one way: the
/// router that dials it opens streams on it; the peer accepts them and treats each like a leg on its WAN port.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "lives as long as the router process")]
internal sealed class WanTrunks(RouterContext context, ILogger logger)
{
    private readonly Dictionary<string, TrunkSlot[]> _slots = context.Cluster.Sites
        .Where(s => s.Name != context.Site.Name)
        .ToDictionary(s => s.Name, s => Enumerable.Range(0, Math.Max(1, context.TrunksPerSite)).Select(_ => new TrunkSlot()).ToArray(), StringComparer.Ordinal);

    private int _next;

    /// <summary>Whether new and resumed WAN stream legs go over trunks (<c>--wan-trunks</c> above 0).</summary>
    public bool Enabled => context.TrunksPerSite > 0;

    /// <summary>Trunks up now (dialled by this router).</summary>
    public int Count => _slots.Values.Sum(slots => slots.Count(s => s.Current?.IsAlive == true));

    /// <summary>Opens a stream leg to <paramref name="site"/>'s router on a trunk: the header, then the hop's reply.</summary>
    public async Task<LegDialResult> OpenLegAsync(SiteSettings site, byte[] header, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var opened = await OpenStreamAsync(site, timeout, cancellationToken).ConfigureAwait(false);
        return opened.Leg is null
            ? new LegDialResult(LegStatus.HostUnreachable, null, opened.Detail)
            : await LegConnector.OpenAsync(opened.Leg, header, opened.Detail, timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A resume leg on a trunk (see <see cref="ResumeHandshake"/>); never throws for network trouble.</summary>
    public async Task<ResumeDial> ResumeAsync(SiteSettings site, byte[] header, long received, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var opened = await OpenStreamAsync(site, timeout, cancellationToken).ConfigureAwait(false);
        return opened.Leg is null
            ? ResumeDial.Failed(opened.Detail)
            : await ResumeHandshake.ResumeOverAsync(opened.Leg, header, received, opened.Detail, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Serves a trunk a peer router dialled (its header already authenticated and answered): every virtual stream
    /// on it is handed to <paramref name="handleLeg"/> as a leg from that peer, until the trunk ends.
    /// </summary>
    public async Task ServeAsync(string site, RelayEndpoint link, Func<RelayEndpoint, CancellationToken, Task> handleLeg, CancellationToken cancellationToken)
    {
        await using var trunk = Trunk.StartServer(link.Stream, Options, logger);
        logger.LogInformation("Trunk from site {Site} up ({Remote})", site, link.RemoteDescription);
        try
        {
            while (true)
            {
                var stream = await trunk.AcceptAsync(cancellationToken).ConfigureAwait(false);
                // Each stream runs on its own: its session outlives this trunk (it waits for a resume on another one).
                _ = ServeStreamAsync(site, new RelayEndpoint(stream, stream), handleLeg, cancellationToken);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ProtocolException)
        {
            logger.LogInformation("Trunk from site {Site} down: {Reason}", site, cancellationToken.IsCancellationRequested ? "router stopping" : e.Message);
        }
        finally
        {
            trunk.Abort("trunk ended");
            link.Abort();
        }
    }

    private async Task ServeStreamAsync(string site, RelayEndpoint leg, Func<RelayEndpoint, CancellationToken, Task> handleLeg, CancellationToken cancellationToken)
    {
        try
        {
            await handleLeg(leg, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ProtocolException or System.Net.Sockets.SocketException)
        {
            logger.LogDebug("Stream leg on the trunk from site {Site} ended: {Reason}", site, e.Message);
            leg.Abort();
        }
    }

    /// <summary>
    /// The window stays the default on both routers: each side checks the other's Data frames against its own
    /// window, so it is part of the protocol, not a local setting (4 MiB per stream and direction: one stream
    /// moves up to 4 MiB per round trip, 3.3 Gbit/s at 10 ms).
    /// </summary>
    private TrunkOptions Options => TrunkOptions.Default with
    {
        KeepaliveInterval = context.ResumeOptions.Keepalive,
        DeadAfter = context.ResumeOptions.DeadAfter,
    };

    private async Task<(RelayEndpoint? Leg, string Detail)> OpenStreamAsync(SiteSettings site, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var slots = _slots[site.Name];
        // Streams spread over the site's trunks round robin; a dead trunk is re-dialled by the first stream that needs it.
        var slot = slots[(int)((uint)Interlocked.Increment(ref _next) % (uint)slots.Length)];
        var target = $"trunk to site {site.Name} ({site.Wan})";
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            var (trunk, failure) = await slot.GetAsync(() => DialAsync(site, timeout), deadline.Token).ConfigureAwait(false);
            if (trunk is null)
            {
                return (null, $"{target}: {failure}");
            }

            var stream = await trunk.OpenAsync(deadline.Token).ConfigureAwait(false);
            return (new RelayEndpoint(stream, stream), target);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"{target}: not up within {timeout.TotalSeconds:0.#} s");
        }
        catch (IOException e)
        {
            return (null, $"{target}: {e.Message}");
        }
    }

    private async Task<(Trunk? Trunk, string Detail)> DialAsync(SiteSettings site, TimeSpan timeout)
    {
        var header = new LegHeader(LegKind.Trunk, 0, Guid.NewGuid(),
            new VirtualEndpoint(context.Registry.RouterVip, 0), new VirtualEndpoint(site.Subnet.Network + 1, 0),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), context.Epoch).ToBytes(context.RouterSecret);
        var dial = await LegConnector.DialAsync(site.Wan.ToIPEndPoint(), header, context.WanSecurityFor(site, logger), timeout, CancellationToken.None).ConfigureAwait(false);
        if (dial.Endpoint is not { } link)
        {
            logger.LogDebug("Trunk to site {Site} not up: {Status} ({Detail})", site.Name, dial.Status, dial.Detail);
            return (null, $"{dial.Status} ({dial.Detail})");
        }

        var trunk = Trunk.StartClient(link.Stream, Options, logger);
        context.Metrics.TrunkDialled();
        logger.LogInformation("Trunk to site {Site} up ({Remote})", site.Name, link.RemoteDescription);
        _ = trunk.Completion.ContinueWith(t =>
        {
            link.Abort();
            logger.LogInformation("Trunk to site {Site} down: {Reason}", site.Name, t.IsCompletedSuccessfully ? t.Result : "ended");
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return (trunk, "");
    }
}
