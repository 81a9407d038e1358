using System.Buffers;
using System.Diagnostics;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// One relayed stream between two routers whose WAN leg may break and be replaced while the program's
/// connection (the LAN leg) stays open. Each direction counts what it received (bytes, plus one for the
/// FIN); the sender keeps what it read from its program until the peer acknowledges it. When a leg breaks,
/// the dialling router re-dials with backoff and the accepting router waits for that; on the new leg each
/// side learns the other's receive count and resends exactly what is missing. Programs see a pause.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "RunAsync owns and disposes them when the stream ends")]
public sealed class ResumableSession
{
    /// <summary>One read from the program: 128 KiB buffers including the frame header's spare bytes.</summary>
    private const int ReadSize = StreamRelay.BufferSize - ResumableFrame.HeaderSize;

    /// <summary>
    /// After our program's connection failed, how long the writer may keep sending what was read from it before the
    /// failure (a server's last reply before it closed; the reset came when more data reached its closed socket).
    /// Reading such a socket returns its queued bytes and then the error at once, so this is only a bound.
    /// </summary>
    private static readonly TimeSpan LocalResetDrain = TimeSpan.FromMilliseconds(250);

    /// <summary>Short reads are copied into a right-sized buffer, so interactive streams hold little memory.</summary>
    private const int SmallCopy = 16 * 1024;

    private readonly RelayEndpoint _lan;
    private readonly ResumableOptions _options;
    private readonly OutboundBuffer _out;
    private readonly Func<long, CancellationToken, Task<ResumeDial>>? _redial;
    private readonly ILogger _logger;
    private readonly AsyncSignal _writerWake = new();
    /// <summary>Made when the accepting router first waits for a resume (most streams never do).</summary>
    private AsyncSignal? _offered;
    private readonly Lock _lock = new();
    private long _received;
    private long _lastAckSent;
    private volatile bool _inboundFin;
    private volatile bool _localReset;
    private long _localResetAt;
    private volatile bool _lanReadEnded;
    private SessionEnd? _forcedEnd;
    private Offer? _offer;
    private RelayEndpoint? _currentLeg;
    private long _lastResumeTimestamp;
    private bool _ended;
    private CancellationToken _sessionToken;

    /// <summary>
    /// The current leg is ending: its writer returns at its next turn. Stopping a leg this way (and by aborting it,
    /// which fails its reads and writes) needs no token source per leg, so an idle stream holds none.
    /// </summary>
    private volatile bool _legStopping;

    /// <param name="redial">The dialling router's way to open a resume leg (given our receive count); null on the accepting router.</param>
    /// <param name="openedAtMs">The accepting router: the opening header's timestamp (resume headers must be newer).</param>
    /// <param name="spool">The router's spool for what the program sends while the leg is down, beyond memory; null: none.</param>
    public ResumableSession(Guid streamId, RelayEndpoint lan, ResumableOptions options, BufferBudget budget, ILogger logger,
        Func<long, CancellationToken, Task<ResumeDial>>? redial, long openedAtMs = 0, Spool? spool = null)
    {
        StreamId = streamId;
        _lan = lan;
        _options = options;
        _out = new OutboundBuffer(options.StreamBuffer, budget, spool);
        _redial = redial;
        _logger = logger;
        _lastResumeTimestamp = openedAtMs;
    }

    public Guid StreamId { get; }

    /// <summary>How often the leg was replaced.</summary>
    public int Resumes { get; private set; }

    /// <summary>The peer's receive count from the last resume handshake (tests check every point).</summary>
    public long LastPeerReceived { get; private set; }

    /// <summary>What this side has delivered to its program (bytes, plus one after the peer's FIN).</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Bytes of memory this stream holds for resends now.</summary>
    public long Buffered => _out.Held;

    /// <summary>Bytes this stream holds for resends in its spool file now.</summary>
    public long Spooled => _out.Spooled;

    /// <summary>Relays until the stream ends; <paramref name="firstLeg"/> is the leg that opened it (both counts zero).</summary>
    public async Task<SessionEnd> RunAsync(RelayEndpoint firstLeg, CancellationToken cancellationToken)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _sessionToken = session.Token;
        var lanReader = ReadLanAsync(session.Token);
        var leg = firstLeg;
        long peerReceived = 0;
        var end = SessionEnd.Stopped;
        var reason = "router stopping";
        try
        {
            while (true)
            {
                var legEnd = await RunLegAsync(leg, peerReceived, session.Token).ConfigureAwait(false);
                reason = legEnd.Reason;
                if (legEnd.End is { } ended)
                {
                    end = ended;
                    break;
                }

                if (cancellationToken.IsCancellationRequested)
                {
                    break;
                }

                _logger.LogInformation("Stream {Stream}: WAN leg lost ({Reason}); {Action}", StreamId, legEnd.Reason,
                    _redial is null ? "waiting for the peer router to resume it" : "re-dialling");
                _out.SpillAllowed = true;
                var down = Stopwatch.GetTimestamp();
                var next = _redial is null ? await WaitForOfferAsync(down, session.Token).ConfigureAwait(false) : await RedialAsync(down, session.Token).ConfigureAwait(false);
                if (next.End is { } lost)
                {
                    end = lost;
                    reason = next.Reason;
                    break;
                }

                leg = next.Leg!;
                _out.SpillAllowed = false;
                peerReceived = next.PeerReceived;
                Resumes++;
                LastPeerReceived = peerReceived;
                _logger.LogInformation("Stream {Stream} resumed after {Ms} ms: peer had received {Peer} of our {Sent}, we had received {Received}",
                    StreamId, (long)Stopwatch.GetElapsedTime(down).TotalMilliseconds, peerReceived, _out.End, Received);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            end = SessionEnd.Stopped;
        }
        finally
        {
            Offer? pending;
            lock (_lock)
            {
                _ended = true;
                pending = _offer;
                _offer = null;
            }

            pending?.Leg.Abort();
            await session.CancelAsync().ConfigureAwait(false);
            if (end == SessionEnd.Completed)
            {
                await _lan.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                _lan.Abort();
            }

            await lanReader.ConfigureAwait(false);
            _out.Dispose();
        }

        if (end is SessionEnd.OutageTooLong or SessionEnd.PeerLost or SessionEnd.ProtocolError)
        {
            _logger.LogWarning("Stream {Stream} reset: {End} ({Reason})", StreamId, end, reason);
        }

        return end;
    }

    /// <summary>
    /// The accepting router got a resume leg for this stream (header authenticated, the dialer's receive
    /// count read). False if the stream ended or the header is not newer than the last one (a replay).
    /// The session answers on the leg (reply, then its own count) once the old leg has stopped.
    /// </summary>
    public bool TryOffer(RelayEndpoint leg, long peerReceived, long timestampMs)
    {
        RelayEndpoint? older;
        RelayEndpoint? current;
        lock (_lock)
        {
            if (_ended || _redial is not null || timestampMs <= _lastResumeTimestamp)
            {
                return false;
            }

            _lastResumeTimestamp = timestampMs;
            older = _offer?.Leg;
            current = _currentLeg;
            _offer = new Offer(leg, peerReceived);
        }

        older?.Abort();
        // The dialer gave up on the current leg (it may not have noticed yet here): replace it now.
        current?.Abort();
        AsyncSignal.SetIfMade(ref _offered);
        return true;
    }

    /// <summary>The peer router is known to have restarted: it will never resume this stream.</summary>
    public void EndPeerLost()
    {
        RelayEndpoint? current;
        lock (_lock)
        {
            _forcedEnd ??= SessionEnd.PeerLost;
            current = _currentLeg;
        }

        current?.Abort();
        AsyncSignal.SetIfMade(ref _offered);
    }

    private SessionEnd? ForcedEnd
    {
        get
        {
            lock (_lock)
            {
                return _forcedEnd;
            }
        }
    }

    private async Task<LegOutcome> RunLegAsync(RelayEndpoint leg, long peerReceived, CancellationToken cancellationToken)
    {
        if (!_out.TryAck(peerReceived, out var error))
        {
            leg.Abort();
            return new LegOutcome(SessionEnd.ProtocolError, error);
        }

        lock (_lock)
        {
            _currentLeg = leg;
            if (_offer is not null || _forcedEnd is not null)
            {
                leg.Abort();
            }
        }

        _legStopping = false;
        // A leg on its own socket (--wan-trunks 0) keeps a token source of its own: its reads are cancelled before it
        // is closed, as an SslStream wants (no dispose racing a read). A carried leg is stopped by the flag and its
        // end alone (a trunk stream fails a pending read when aborted or disposed), so an idle one holds no source.
        using var legCts = leg.IsCarried ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var legToken = legCts?.Token ?? cancellationToken;
        // What the peer knows we have (the handshake's count; zero on a new stream): nothing reads the leg yet,
        // so it is read before the reader starts and may deliver frames already waiting.
        var told = Received;
        var reader = ReadLegAsync(leg, legToken);
        var writer = WriteLegAsync(leg, peerReceived, told, legToken);
        var first = await Task.WhenAny(reader, writer).ConfigureAwait(false);
        var outcome = await first.ConfigureAwait(false);
        if (outcome.End is null && _inboundFin && _out.FinAcked)
        {
            // Both directions are done here; the peer closed the leg as soon as it saw our last Ack.
            outcome = new LegOutcome(SessionEnd.Completed, "completed");
        }

        _logger.LogTrace("Stream {Stream}: leg ended by {Who}: {End} ({Reason}); fin in {Fin}, fin acked {Acked}, received {Received}, acked {Ack} of {End2}",
            StreamId, first == reader ? "reader" : "writer", outcome.End, outcome.Reason, _inboundFin, _out.FinAcked, Received, _out.Acked, _out.End);
        if (outcome.End == SessionEnd.Completed)
        {
            // Close like TCP: our FIN, then read until the peer's, so neither side closes with unread
            // frames (that would be a reset, which can destroy the peer's last Ack still in flight).
            await leg.ShutdownSendAsync().ConfigureAwait(false);
            await Task.WhenAny(reader, Task.Delay(_options.DeadAfter, CancellationToken.None)).ConfigureAwait(false);
        }

        if (first == reader && outcome.End == SessionEnd.LocalReset)
        {
            // Our program's connection failed while writing to it: give the writer a moment to tell the peer.
            _writerWake.Set();
            await Task.WhenAny(writer, Task.Delay(_options.Keepalive, CancellationToken.None)).ConfigureAwait(false);
        }

        // Stop the other loop: the writer at its next turn (woken now), the reader (and a writer inside a write) by
        // the leg's end below, which fails what they wait for.
        _legStopping = true;
        _writerWake.Set();
        if (legCts is not null)
        {
            await legCts.CancelAsync().ConfigureAwait(false);
        }

        if (outcome.End == SessionEnd.Completed)
        {
            await leg.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            leg.Abort();
        }

        await Task.WhenAll(reader, writer).ConfigureAwait(false);
        lock (_lock)
        {
            _currentLeg = null;
        }

        if (outcome.End is null && ForcedEnd is { } forced)
        {
            return new LegOutcome(forced, "the peer router restarted");
        }

        if (outcome.End is null && _localReset && _redial is null)
        {
            // The dialer will learn of the reset when its resume is refused (unknown stream).
            return new LegOutcome(SessionEnd.LocalReset, "program connection failed while the WAN leg was down");
        }

        return outcome;
    }

    /// <param name="cancellationToken">The leg's (the session's for a carried leg, whose reads end when RunLegAsync aborts or closes it).</param>
    private async Task<LegOutcome> ReadLegAsync(RelayEndpoint leg, CancellationToken cancellationToken)
    {
        var header = new byte[ResumableFrame.ControlSize];
        // A carried leg's trunk declares it dead (for all its streams at once), so it needs no dead timer, and its
        // reads no token: an idle carried stream then holds no token source and no registration here.
        using var deadline = leg.IsCarried ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var legToken = deadline?.Token ?? CancellationToken.None;
        try
        {
            while (true)
            {
                deadline?.CancelAfter(_options.DeadAfter);

                // The first read directly (no ReadExactOrEndAsync frame while the leg is idle); the rest of a split header after it.
                var first = await leg.Stream.ReadAsync(header.AsMemory(0, ResumableFrame.HeaderSize), legToken).ConfigureAwait(false);
                if (first == 0)
                {
                    return LegOutcome.Broken("the peer router closed the leg");
                }

                if (first < ResumableFrame.HeaderSize
                    && !await StreamIo.ReadExactOrEndAsync(leg.Stream, header.AsMemory(first, ResumableFrame.HeaderSize - first), legToken).ConfigureAwait(false))
                {
                    throw new ProtocolException("leg ended inside a frame");
                }

                if (!ResumableFrame.TryParseHeader(header, out var type, out var length, out var error))
                {
                    return new LegOutcome(SessionEnd.ProtocolError, error);
                }

                switch (type)
                {
                    case ResumableFrameType.Data:
                        if (_inboundFin)
                        {
                            return new LegOutcome(SessionEnd.ProtocolError, "data after FIN");
                        }

                        var buffer = ArrayPool<byte>.Shared.Rent(length);
                        try
                        {
                            if (!await StreamIo.ReadExactOrEndAsync(leg.Stream, buffer.AsMemory(0, length), legToken).ConfigureAwait(false))
                            {
                                return LegOutcome.Broken("the peer router closed the leg");
                            }

                            // Writing to our program may wait as long as the program does: that is not a dead leg.
                            deadline?.CancelAfter(Timeout.InfiniteTimeSpan);
                            try
                            {
                                await _lan.Stream.WriteAsync(buffer.AsMemory(0, length), _sessionToken).ConfigureAwait(false);
                            }
                            catch (Exception e) when (e is not OutOfMemoryException)
                            {
                                MarkLocalReset();
                                return new LegOutcome(SessionEnd.LocalReset, "program connection failed: " + e.Message);
                            }
                        }
                        finally
                        {
                            ArrayPool<byte>.Shared.Return(buffer);
                        }

                        if (Interlocked.Add(ref _received, length) - Interlocked.Read(ref _lastAckSent) >= _options.AckEvery)
                        {
                            _writerWake.Set();
                        }

                        break;
                    case ResumableFrameType.Ack:
                        await ReadBodyAsync(leg, header, legToken).ConfigureAwait(false);
                        if (!_out.TryAck(ResumableFrame.ReadCount(header.AsSpan(ResumableFrame.HeaderSize)), out error))
                        {
                            return new LegOutcome(SessionEnd.ProtocolError, error);
                        }

                        if (_inboundFin)
                        {
                            _writerWake.Set(); // the writer decides when everything is done
                        }

                        break;
                    case ResumableFrameType.Fin:
                        if (_inboundFin)
                        {
                            return new LegOutcome(SessionEnd.ProtocolError, "second FIN");
                        }

                        await _lan.ShutdownSendAsync().ConfigureAwait(false);
                        Interlocked.Increment(ref _received);
                        _inboundFin = true;
                        _writerWake.Set();
                        break;
                    case ResumableFrameType.Reset:
                        return new LegOutcome(SessionEnd.PeerReset, "the peer router reset the stream");
                    default:
                        return new LegOutcome(SessionEnd.ProtocolError, $"unexpected {type} frame");
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return LegOutcome.Broken($"nothing received for {_options.DeadAfter.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return LegOutcome.Broken(cancellationToken.IsCancellationRequested ? "leg replaced" : e.Message);
        }
    }

    private static async Task ReadBodyAsync(RelayEndpoint leg, byte[] header, CancellationToken cancellationToken)
    {
        if (!await StreamIo.ReadExactOrEndAsync(leg.Stream, header.AsMemory(ResumableFrame.HeaderSize, 8), cancellationToken).ConfigureAwait(false))
        {
            throw new ProtocolException("leg ended inside a frame");
        }
    }

    private async Task<LegOutcome> WriteLegAsync(RelayEndpoint leg, long startPosition, long peerKnows, CancellationToken cancellationToken)
    {
        var control = new byte[ResumableFrame.ControlSize];
        var stream = leg.Stream;
        var position = startPosition;
        var lastAck = peerKnows;
        Interlocked.Exchange(ref _lastAckSent, lastAck);
        var lastSend = Stopwatch.GetTimestamp();
        var lastAckAt = lastSend;
        // A leg carried by a trunk needs no keepalive of its own: the trunk pings for all its streams, so
        // thousands of idle streams cost no frames, no timer and no wake-ups (they wait without a timeout).
        var keepalive = leg.IsCarried ? Timeout.InfiniteTimeSpan : _options.Keepalive;
        try
        {
            while (true)
            {
                if (_legStopping)
                {
                    return LegOutcome.Broken("leg replaced");
                }

                // A reset goes after what our program sent before its connection failed, as TCP delivers a peer's last
                // bytes and FIN before its reset.
                if (_localReset && ((_lanReadEnded && !_out.TryGet(position, out _)) || Stopwatch.GetElapsedTime(Interlocked.Read(ref _localResetAt)) >= LocalResetDrain))
                {
                    ResumableFrame.WriteHeader(control, ResumableFrameType.Reset, 0);
                    await stream.WriteAsync(control.AsMemory(0, ResumableFrame.HeaderSize), cancellationToken).ConfigureAwait(false);
                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                    return new LegOutcome(SessionEnd.LocalReset, "program connection failed");
                }

                // The FIN flag first: it is set after the count, so if it is seen the count includes the FIN.
                var finReceived = _inboundFin;
                var received = Received;
                if (received != lastAck && (received - lastAck >= _options.AckEvery || finReceived || Stopwatch.GetElapsedTime(lastAckAt) >= _options.AckDelay))
                {
                    ResumableFrame.WriteCount(control, ResumableFrameType.Ack, received);
                    await stream.WriteAsync(control, cancellationToken).ConfigureAwait(false);
                    lastAck = received;
                    Interlocked.Exchange(ref _lastAckSent, lastAck);
                    lastAckAt = lastSend = Stopwatch.GetTimestamp();
                }

                if (_out.TryGet(position, out var segment))
                {
                    if (segment.IsFin)
                    {
                        ResumableFrame.WriteHeader(control, ResumableFrameType.Fin, 0);
                        await stream.WriteAsync(control.AsMemory(0, ResumableFrame.HeaderSize), cancellationToken).ConfigureAwait(false);
                    }
                    else if (segment.IsSpooled)
                    {
                        var offset = (int)(position - segment.Start);
                        var length = segment.Length - offset;
                        var frame = ArrayPool<byte>.Shared.Rent(ResumableFrame.HeaderSize + length);
                        try
                        {
                            try
                            {
                                OutboundBuffer.ReadSpooled(segment, offset, frame.AsSpan(ResumableFrame.HeaderSize, length));
                            }
                            catch (Exception e) when (e is IOException or ObjectDisposedException)
                            {
                                // The bytes cannot be had again: the stream cannot continue intact.
                                return new LegOutcome(SessionEnd.ProtocolError, "spool read failed: " + e.Message);
                            }

                            ResumableFrame.WriteHeader(frame, ResumableFrameType.Data, length);
                            await stream.WriteAsync(frame.AsMemory(0, ResumableFrame.HeaderSize + length), cancellationToken).ConfigureAwait(false);
                        }
                        finally
                        {
                            ArrayPool<byte>.Shared.Return(frame);
                        }
                    }
                    else
                    {
                        var offset = (int)(position - segment.Start);
                        var length = segment.Length - offset;
                        if (offset == 0)
                        {
                            // The header goes into the segment's spare bytes: one write per frame.
                            ResumableFrame.WriteHeader(segment.Array, ResumableFrameType.Data, length);
                            await stream.WriteAsync(segment.Array.AsMemory(0, ResumableFrame.HeaderSize + length), cancellationToken).ConfigureAwait(false);
                        }
                        else
                        {
                            ResumableFrame.WriteHeader(control, ResumableFrameType.Data, length);
                            await stream.WriteAsync(control.AsMemory(0, ResumableFrame.HeaderSize), cancellationToken).ConfigureAwait(false);
                            await stream.WriteAsync(segment.Array.AsMemory(ResumableFrame.HeaderSize + offset, length), cancellationToken).ConfigureAwait(false);
                        }
                    }

                    position = segment.End;
                    lastSend = Stopwatch.GetTimestamp();
                    continue;
                }

                if (finReceived && received == lastAck && _out.FinAcked && !_localReset)
                {
                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                    return new LegOutcome(SessionEnd.Completed, "completed");
                }

                var wait = _localReset ? TimeSpan.FromMilliseconds(10)
                    : received != lastAck ? _options.AckDelay
                    : keepalive == Timeout.InfiniteTimeSpan ? keepalive
                    : TimeSpan.FromTicks(Math.Max((keepalive - Stopwatch.GetElapsedTime(lastSend)).Ticks, TimeSpan.TicksPerMillisecond));
                var woke = await _writerWake.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
                if (!woke && keepalive != Timeout.InfiniteTimeSpan && Stopwatch.GetElapsedTime(lastSend) >= keepalive)
                {
                    received = Received;
                    ResumableFrame.WriteCount(control, ResumableFrameType.Ack, received);
                    await stream.WriteAsync(control, cancellationToken).ConfigureAwait(false);
                    lastAck = received;
                    Interlocked.Exchange(ref _lastAckSent, lastAck);
                    lastAckAt = lastSend = Stopwatch.GetTimestamp();
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return LegOutcome.Broken(cancellationToken.IsCancellationRequested ? "leg replaced" : e.Message);
        }
    }

    private async Task ReadLanAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var room = await _out.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
                var array = Array.Empty<byte>();
                int n;
                try
                {
                    // Wait for data without holding a buffer: idle streams cost no memory. No token either (a
                    // registration per idle stream): RunAsync cancels the session and then closes the connection,
                    // which ends these reads.
                    await _lan.Stream.ReadAsync(Memory<byte>.Empty, CancellationToken.None).ConfigureAwait(false);
                    array = ArrayPool<byte>.Shared.Rent(StreamRelay.BufferSize);
                    n = await _lan.Stream.ReadAsync(array.AsMemory(ResumableFrame.HeaderSize, ReadSize), CancellationToken.None).ConfigureAwait(false);
                }
                catch
                {
                    if (array.Length > 0)
                    {
                        ArrayPool<byte>.Shared.Return(array);
                    }

                    _out.CancelReservation();
                    throw;
                }

                if (n == 0)
                {
                    ArrayPool<byte>.Shared.Return(array);
                    _out.CancelReservation();
                    _out.AppendFin();
                    _writerWake.Set();
                    return;
                }

                if (room == ReadRoom.Spool)
                {
                    _out.AppendSpooled(array, n);
                    _writerWake.Set();
                    continue;
                }

                if (n <= SmallCopy)
                {
                    var small = ArrayPool<byte>.Shared.Rent(ResumableFrame.HeaderSize + n);
                    array.AsSpan(ResumableFrame.HeaderSize, n).CopyTo(small.AsSpan(ResumableFrame.HeaderSize));
                    ArrayPool<byte>.Shared.Return(array);
                    array = small;
                }

                _out.Append(array, n);
                _writerWake.Set();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                _logger.LogDebug("Stream {Stream}: program connection failed ({Reason})", StreamId, e.Message);
                MarkLocalReset();
            }
        }
        finally
        {
            // The writer may now send its reset: everything our program sent before its connection failed is queued.
            _lanReadEnded = true;
            _writerWake.Set();
        }
    }

    private void MarkLocalReset()
    {
        if (!_localReset)
        {
            Interlocked.Exchange(ref _localResetAt, Stopwatch.GetTimestamp());
        }

        _localReset = true;
        _writerWake.Set();
        AsyncSignal.SetIfMade(ref _offered);
    }

    private async Task<NextLeg> RedialAsync(long downSince, CancellationToken cancellationToken)
    {
        var delay = _options.RedialFirst;
        var attempt = 0;
        while (true)
        {
            if (ForcedEnd is { } forced)
            {
                return NextLeg.Ended(forced, "the peer router restarted");
            }

            var left = _options.OutageMax - Stopwatch.GetElapsedTime(downSince);
            if (left <= TimeSpan.Zero)
            {
                return NextLeg.Ended(SessionEnd.OutageTooLong, $"WAN leg down for more than {_options.OutageMax.TotalSeconds:0.#} s");
            }

            await Task.Delay(delay < left ? delay : left, cancellationToken).ConfigureAwait(false);
            attempt++;
            ResumeDial dial;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(_options.RedialTimeout);
                try
                {
                    dial = await _redial!(Received, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    dial = ResumeDial.Failed($"no answer within {_options.RedialTimeout.TotalSeconds:0.#} s");
                }
            }

            switch (dial.Status)
            {
                case ResumeDialStatus.Connected:
                    return new NextLeg(null, dial.Leg, dial.PeerReceived, "");
                case ResumeDialStatus.Refused:
                    return NextLeg.Ended(SessionEnd.PeerLost, "the peer router does not know the stream (" + dial.Detail + ")");
                default:
                    _logger.LogDebug("Stream {Stream}: resume attempt {Attempt} failed ({Detail}); next in {Delay} ms", StreamId, attempt, dial.Detail, (long)delay.TotalMilliseconds);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.RedialMax.Ticks));
                    break;
            }
        }
    }

    private async Task<NextLeg> WaitForOfferAsync(long downSince, CancellationToken cancellationToken)
    {
        while (true)
        {
            var offered = AsyncSignal.Made(ref _offered);
            Offer? offer;
            lock (_lock)
            {
                offer = _offer;
                _offer = null;
            }

            if (offer is not null)
            {
                try
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(_options.RedialTimeout);
                    await offer.Leg.Stream.WriteAsync(ResumeHandshake.AcceptReply(Received), timeout.Token).ConfigureAwait(false);
                    await offer.Leg.Stream.FlushAsync(timeout.Token).ConfigureAwait(false);
                    return new NextLeg(null, offer.Leg, offer.PeerReceived, "");
                }
                catch (Exception e) when (e is not OutOfMemoryException && !cancellationToken.IsCancellationRequested)
                {
                    offer.Leg.Abort();
                    continue;
                }
            }

            if (_localReset)
            {
                return NextLeg.Ended(SessionEnd.LocalReset, "program connection failed while the WAN leg was down");
            }

            if (ForcedEnd is { } forced)
            {
                return NextLeg.Ended(forced, "the peer router restarted");
            }

            var left = _options.OutageMax - Stopwatch.GetElapsedTime(downSince);
            if (left <= TimeSpan.Zero)
            {
                return NextLeg.Ended(SessionEnd.OutageTooLong, $"WAN leg down for more than {_options.OutageMax.TotalSeconds:0.#} s");
            }

            await offered.WaitAsync(left, cancellationToken).ConfigureAwait(false);
        }
    }

    private sealed record Offer(RelayEndpoint Leg, long PeerReceived);

    private readonly record struct LegOutcome(SessionEnd? End, string Reason)
    {
        public static LegOutcome Broken(string reason) => new(null, reason);
    }

    private readonly record struct NextLeg(SessionEnd? End, RelayEndpoint? Leg, long PeerReceived, string Reason)
    {
        public static NextLeg Ended(SessionEnd end, string reason) => new(end, null, 0, reason);
    }
}
