using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router.Resumable;

/// <summary>
/// The router's inter-site streams over resumable WAN legs: the dialling side (a node's stream to another
/// site) re-dials broken legs; the accepting side keeps its streams in <see cref="ResumableStreams"/> for
/// resume legs, and ends them at once when the peer router restarted (new epoch).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "lives as long as the router process")]
internal sealed class WanStreams(RouterContext context, Trunks.WanTrunks trunks, ILogger logger)
{
    /// <summary>
    /// Resume dials (TCP + TLS handshakes) in flight at once. After an outage every stream re-dials at the same
    /// moment; unbounded, a thousand handshakes starve the legs' keepalives on a small head node and the
    /// dead-leg timer breaks legs that just resumed. A stream that waits here past its attempt's timeout
    /// simply tries again after its backoff.
    /// </summary>
    private const int ConcurrentResumes = 16;

    private readonly ResumableStreams _streams = new(context.ResumeOptions);
    private readonly SemaphoreSlim _resumeSlots = new(ConcurrentResumes, ConcurrentResumes);

    public int Count => _streams.Count;

    /// <summary>The trunks that carry new and resumed legs when enabled.</summary>
    public Trunks.WanTrunks Trunks => trunks;

    public long Buffered => _streams.Budget.Held;

    /// <summary>The header a router sends on a new WAN stream leg: framed, with this router's epoch as key id.</summary>
    public LegHeader WanHeader(LegHeader header, long nowMs) =>
        header with { Flags = ResumableFlags.Framed, TimestampMs = nowMs, KeyId = context.Epoch };

    /// <summary>A peer router's leg or link carried its epoch: streams of an older instance of it end.</summary>
    public void PeerEpoch(string site, ulong epoch) => _streams.PeerEpoch(site, epoch);

    /// <summary>This router dialled the WAN leg (<paramref name="wanHeader"/>) for a node's stream: relay, re-dialling on breaks.</summary>
    public async Task RunDialerAsync(LegHeader wanHeader, Core.Config.SiteSettings site, RelayEndpoint lan, RelayEndpoint wan, CancellationToken cancellationToken)
    {
        var lastTimestamp = wanHeader.TimestampMs;
        var security = context.WanSecurityFor(site, logger);
        var target = site.Wan.ToIPEndPoint();
        async Task<ResumeDial> Redial(long received, CancellationToken ct)
        {
            await _resumeSlots.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                // Strictly increasing per stream: the accepting router refuses an older (replayed) resume header.
                lastTimestamp = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), lastTimestamp + 1);
                var header = (wanHeader with { Flags = ResumableFlags.Framed | ResumableFlags.Resume, TimestampMs = lastTimestamp }).ToBytes(context.RouterSecret);
                return trunks.Enabled
                    ? await trunks.ResumeAsync(site, header, received, context.ResumeOptions.RedialTimeout, ct).ConfigureAwait(false)
                    : await ResumeHandshake.DialAsync(target, header, received, security, ct).ConfigureAwait(false);
            }
            finally
            {
                _resumeSlots.Release();
            }
        }

        var session = new ResumableSession(wanHeader.StreamId, lan, context.ResumeOptions, _streams.Budget, logger, Redial, spool: context.WanSpool);
        var end = await session.RunAsync(wan, cancellationToken).ConfigureAwait(false);
        Log(session, end);
    }

    /// <summary>A peer router opened a framed stream leg and our node accepted: relay, waiting for resumes on breaks.</summary>
    public async Task RunAcceptorAsync(LegHeader header, string peerSite, RelayEndpoint wan, RelayEndpoint lan, CancellationToken cancellationToken)
    {
        var session = new ResumableSession(header.StreamId, lan, context.ResumeOptions, _streams.Budget, logger, redial: null, header.TimestampMs, context.WanSpool);
        _streams.Add(session, peerSite, header.KeyId);
        try
        {
            var end = await session.RunAsync(wan, cancellationToken).ConfigureAwait(false);
            Log(session, end);
        }
        finally
        {
            _streams.Remove(session);
        }
    }

    /// <summary>An authenticated resume leg from <paramref name="peerSite"/>: hand it to its stream, or refuse it (unknown stream).</summary>
    public async Task ServeResumeAsync(LegHeader header, string peerSite, RelayEndpoint inbound, CancellationToken cancellationToken)
    {
        _streams.PeerEpoch(peerSite, header.KeyId);
        long peerReceived;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(context.HeaderTimeout);
            peerReceived = await ResumeHandshake.ReadResumeFrameAsync(inbound.Stream, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            logger.LogWarning("Dropped resume leg for stream {Stream} from {Remote}: {Reason}", header.StreamId, inbound.RemoteDescription, e.Message);
            inbound.Abort();
            return;
        }

        var session = _streams.Find(header.StreamId, peerSite);
        if (session is null || !session.TryOffer(inbound, peerReceived, header.TimestampMs))
        {
            context.Metrics.LegRefused();
            logger.LogInformation("Refused resume of stream {Stream} from site {Site}: {Reason}", header.StreamId, peerSite,
                session is null ? "unknown stream (ended, or this router restarted)" : "stream ended, or an older resume header (replay)");
            await LegConnector.TryReplyAsync(inbound, LegStatus.Refused, cancellationToken).ConfigureAwait(false);
            inbound.Abort();
        }
    }

    private void Log(ResumableSession session, SessionEnd end) =>
        logger.LogDebug("Stream {Stream} closed: {End}, {Resumes} resumes, {Received} units received", session.StreamId, end, session.Resumes, session.Received);
}
