using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node;

/// <summary>
/// The agent's datagram leg to its router: one authenticated TCP leg carrying <see cref="LinkFrame"/>s both
/// ways, opened after enrolment and reopened (with the current session's key) whenever it breaks. While it
/// is down, datagrams are dropped, as on a network whose link is down.
/// </summary>
internal sealed class DatagramLink(IPEndPoint router, uint routerVip, Func<NodeSessionState?> session, ILogger logger)
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(5);
    private LinkFrameWriter? _writer;
    private long _dropped;

    /// <summary>Called for every datagram from the router: source, destination, payload (valid during the call only).</summary>
    public required DatagramHandler OnDatagram { get; init; }

    public delegate void DatagramHandler(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload);

    public long Dropped => Interlocked.Read(ref _dropped) + (Volatile.Read(ref _writer)?.Dropped ?? 0);

    public void Send(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload)
    {
        var writer = Volatile.Read(ref _writer);
        if (writer is null || !writer.TrySend(LinkFrame.Datagram(source, destination, payload)))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var delay = FirstRetry;
        while (!cancellationToken.IsCancellationRequested)
        {
            var state = session();
            var dial = state is null ? new LegDialResult(LegStatus.HostUnreachable, null, "not enrolled")
                : await LegConnector.DialAsync(router, Header(state), secure: null, LegConnector.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            if (dial.Endpoint is null)
            {
                logger.LogDebug("Datagram leg not up: {Status} ({Detail}); retrying in {Delay} ms", dial.Status, dial.Detail, (int)delay.TotalMilliseconds);
                try
                {
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                // Not enrolled is local state, cheap to poll: dial within FirstRetry of the (re-)enrolment.
                delay = state is null ? FirstRetry : TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetry.Ticks));
                continue;
            }

            delay = FirstRetry;
            await RunLegAsync(dial.Endpoint, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task RunLegAsync(RelayEndpoint leg, CancellationToken cancellationToken)
    {
        var writer = new LinkFrameWriter();
        Volatile.Write(ref _writer, writer);
        logger.LogDebug("Datagram leg to router {Router} up", router);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var writing = writer.RunAsync(leg.Stream, linked.Token);
            var reading = new LinkFrameReader(leg.Stream).RunAsync(Receive, linked.Token);
            var first = await Task.WhenAny(writing, reading).ConfigureAwait(false);
            await linked.CancelAsync().ConfigureAwait(false);
            await first.ConfigureAwait(false);
            logger.LogInformation("Datagram leg to router {Router} closed by the router; reopening", router);
        }
        catch (Exception e) when (e is IOException or SocketException or ProtocolException or OperationCanceledException)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                logger.LogInformation("Datagram leg to router {Router} broke ({Reason}); reopening", router, e.Message);
            }
        }
        finally
        {
            Interlocked.CompareExchange(ref _writer, null, writer);
            writer.Complete();
            leg.Abort();
        }
    }

    private void Receive(LinkFrameType type, ReadOnlySpan<byte> body)
    {
        if (type != LinkFrameType.Datagram || !LinkFrame.TryParseDatagram(body, out var src, out var dst, out var offset))
        {
            throw new ProtocolException($"router sent a malformed frame (type {type})");
        }

        OnDatagram(src, dst, body[offset..]);
    }

    private byte[] Header(NodeSessionState state) =>
        new LegHeader(LegKind.Datagram, 0, Guid.NewGuid(), new VirtualEndpoint(state.Vip, 0), new VirtualEndpoint(routerVip, 0),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), state.SessionId).ToBytes(state.Key);
}
