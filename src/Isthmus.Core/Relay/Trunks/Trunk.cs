using System.Buffers.Binary;
using System.Threading.Channels;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// Many virtual streams (<see cref="TrunkStream"/>) over one long-lived, already authenticated connection
/// between two routers, so a new stream costs one frame instead of a TCP and TLS handshake, and an idle one
/// a few hundred bytes instead of a TLS session. The dialling side opens streams (<see cref="StartClient"/>,
/// <see cref="OpenAsync"/>), the accepting side accepts them (<see cref="StartServer"/>,
/// <see cref="AcceptAsync"/>). One reader loop, one writer loop and one keepalive timer per trunk, none
/// per stream.
/// </summary>
/// <remarks>
/// A protocol error, an I/O error, the end of the connection or <see cref="TrunkOptions.DeadAfter"/> without
/// any arrival kills the trunk: the transport is disposed, every stream's pending and later reads and writes
/// throw <see cref="IOException"/> ("trunk lost: REASON"), <see cref="Completion"/> completes with REASON,
/// and no stream opens any more. The trunk disposes the transport it was given; pass one that owns its
/// socket (or close the socket when <see cref="Completion"/> completes), else the peer learns of the death
/// only from its own dead timer.
/// </remarks>
public sealed class Trunk : IAsyncDisposable
{
    private readonly Stream _transport;
    private readonly ILogger _logger;
    private readonly Action? _onTraffic;
    private readonly bool _isClient;
    private readonly Lock _streamsLock = new();
    private readonly Dictionary<uint, TrunkStream> _streams = [];
    private readonly Channel<TrunkStream>? _accepted;
    private readonly TrunkWriter _writer;
    private readonly TrunkReader _reader;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<string> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _reading = Task.CompletedTask;
    private Task _writing = Task.CompletedTask;
    private Task _keepalive = Task.CompletedTask;

    /// <summary>Client: the last id assigned. Server: the last id the client opened.</summary>
    private uint _lastId;
    private volatile string? _deathReason;
    private long _lastArrivalMs;

    private Trunk(Stream transport, TrunkOptions options, ILogger logger, Action? onTraffic, bool isClient)
    {
        if (options.Problem() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _transport = transport;
        Options = options;
        _logger = logger;
        _onTraffic = onTraffic;
        _isClient = isClient;
        _accepted = isClient ? null : Channel.CreateUnbounded<TrunkStream>();
        _writer = new TrunkWriter(options);
        _reader = new TrunkReader(transport, options.MaxFrameData);
        _lastArrivalMs = Environment.TickCount64;
    }

    public TrunkOptions Options { get; }

    public bool IsAlive => _deathReason is null;

    /// <summary>Completes (never faults) with the reason when the trunk dies.</summary>
    public Task<string> Completion => _completion.Task;

    /// <summary>Streams open now (on the server including those not accepted yet).</summary>
    public int StreamCount
    {
        get
        {
            lock (_streamsLock)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary>The dialling side; <paramref name="onTraffic"/> is called after every read from and write to the transport.</summary>
    public static Trunk StartClient(Stream transport, TrunkOptions options, ILogger logger, Action? onTraffic = null) =>
        Start(new Trunk(transport, options, logger, onTraffic, isClient: true));

    /// <summary>The accepting side; <paramref name="onTraffic"/> is called after every read from and write to the transport.</summary>
    public static Trunk StartServer(Stream transport, TrunkOptions options, ILogger logger, Action? onTraffic = null) =>
        Start(new Trunk(transport, options, logger, onTraffic, isClient: false));

    /// <summary>A new stream (client only). Costs one frame and no round trip: the first bytes may follow at once.</summary>
    public ValueTask<TrunkStream> OpenAsync(CancellationToken cancellationToken = default)
    {
        if (!_isClient)
        {
            throw new InvalidOperationException("only the dialling side of a trunk opens streams");
        }

        cancellationToken.ThrowIfCancellationRequested();
        TrunkStream stream;
        lock (_streamsLock)
        {
            ThrowIfDead();
            if (_lastId == uint.MaxValue)
            {
                throw new IOException("trunk has used up its stream ids; open a new trunk");
            }

            stream = new TrunkStream(this, ++_lastId, Options.InitialWindow, open: true);
            _streams.Add(stream.Id, stream);
            // Queued for the writer under the same lock that gave it its id: the server requires Opens in id order
            // (a lower id after a higher one is a protocol error that kills the trunk), and two threads opening at
            // once could otherwise queue their streams the other way round. The writer's queue keeps the order.
            _writer.Schedule(stream);
        }

        return ValueTask.FromResult(stream);
    }

    /// <summary>The next stream the client opened (server only); throws <see cref="IOException"/> once the trunk is dead.</summary>
    public async ValueTask<TrunkStream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        if (_accepted is null)
        {
            throw new InvalidOperationException("only the accepting side of a trunk accepts streams");
        }

        try
        {
            return await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new IOException($"trunk lost: {_deathReason}");
        }
    }

    /// <summary>Kills the trunk (idempotent; the first reason wins).</summary>
    public void Abort(string reason)
    {
        TrunkStream[] lost;
        lock (_streamsLock)
        {
            if (_deathReason is not null)
            {
                return;
            }

            _deathReason = reason;
            lost = [.. _streams.Values];
            _streams.Clear();
        }

        _logger.LogInformation("Trunk ({Side}) lost with {Streams} streams: {Reason}", _isClient ? "dialled" : "accepted", lost.Length, reason);
        _stop.Cancel();
        _writer.Stop();
        try
        {
            _transport.Dispose();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Already broken; disposing is all that was left to do.
        }

        var message = $"trunk lost: {reason}";
        foreach (var stream in lost)
        {
            stream.Fail(message);
        }

        if (_accepted is not null)
        {
            _accepted.Writer.TryComplete();
            while (_accepted.Reader.TryRead(out var unaccepted))
            {
                unaccepted.Fail(message);
            }
        }

        _completion.TrySetResult(reason);
    }

    /// <summary>Aborts and waits for the loops to end.</summary>
    public async ValueTask DisposeAsync()
    {
        Abort("closed locally");
        await Task.WhenAll(_reading, _writing, _keepalive).ConfigureAwait(false);
        _stop.Dispose();
    }

    internal void Schedule(TrunkStream stream) => _writer.Schedule(stream);

    /// <summary>A stream closed locally or reset by the peer: later frames for its id are ignored.</summary>
    internal void Forget(TrunkStream stream)
    {
        lock (_streamsLock)
        {
            if (_streams.TryGetValue(stream.Id, out var known) && ReferenceEquals(known, stream))
            {
                _streams.Remove(stream.Id);
            }
        }
    }

    private static Trunk Start(Trunk trunk)
    {
        trunk._reading = Task.Run(trunk.ReadLoopAsync);
        trunk._writing = Task.Run(trunk.WriteLoopAsync);
        trunk._keepalive = Task.Run(trunk.KeepaliveAsync);
        return trunk;
    }

    private async Task ReadLoopAsync()
    {
        string reason;
        try
        {
            await _reader.RunAsync(OnFrame, OnArrival, _stop.Token).ConfigureAwait(false);
            reason = "connection closed by the peer";
        }
        catch (ProtocolException e)
        {
            reason = $"protocol error: {e.Message}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // IOException, SocketException, cancellation, TLS library errors: all end the trunk alike.
            reason = $"read failed: {e.Message}";
        }

        Abort(reason);
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await _writer.RunAsync(_transport, _onTraffic, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Abort($"write failed: {e.Message}");
        }
    }

    /// <summary>
    /// One timer per trunk: a Ping after <see cref="TrunkOptions.KeepaliveInterval"/> without arrivals (the
    /// Pong is an arrival), death after <see cref="TrunkOptions.DeadAfter"/> without any. Death also needs a
    /// Ping that went unanswered for DeadAfter - KeepaliveInterval, so a timer of ours that ran late (a
    /// starved thread pool) gives the peer its chance to answer instead of killing a healthy trunk.
    /// </summary>
    private async Task KeepaliveAsync()
    {
        var interval = (long)Options.KeepaliveInterval.TotalMilliseconds;
        var deadAfter = (long)Options.DeadAfter.TotalMilliseconds;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Max(10, Math.Min(interval, deadAfter) / 4)));
        var lastPing = Environment.TickCount64;
        long firstUnanswered = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var now = Environment.TickCount64;
                var lastArrival = Volatile.Read(ref _lastArrivalMs);
                if (firstUnanswered != 0 && lastArrival >= firstUnanswered)
                {
                    firstUnanswered = 0;
                }

                var silent = now - lastArrival;
                if (silent >= deadAfter && firstUnanswered != 0 && now - firstUnanswered >= deadAfter - interval)
                {
                    Abort($"nothing arrived for {silent} ms (dead after {deadAfter} ms)");
                    return;
                }

                if (silent >= interval && now - lastPing >= interval)
                {
                    _writer.SendPing(now);
                    lastPing = now;
                    if (firstUnanswered == 0)
                    {
                        firstUnanswered = now;
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The trunk died.
        }
    }

    private void OnArrival()
    {
        Volatile.Write(ref _lastArrivalMs, Environment.TickCount64);
        _onTraffic?.Invoke();
    }

    private void OnFrame(TrunkFrameType type, uint streamId, ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case TrunkFrameType.Ping:
                _writer.SendPong(BinaryPrimitives.ReadInt64BigEndian(body));
                return;
            case TrunkFrameType.Pong:
                return;
            case TrunkFrameType.Open:
                OnOpen(streamId);
                return;
        }

        var stream = Find(type, streamId);
        if (stream is null)
        {
            return;
        }

        switch (type)
        {
            case TrunkFrameType.Data:
                stream.DeliverData(body);
                break;
            case TrunkFrameType.Credit:
                stream.DeliverCredit(BinaryPrimitives.ReadUInt32BigEndian(body));
                break;
            case TrunkFrameType.Fin:
                stream.DeliverFin();
                break;
            case TrunkFrameType.Reset:
                Forget(stream);
                stream.DeliverReset();
                break;
        }
    }

    private void OnOpen(uint streamId)
    {
        if (_isClient)
        {
            throw new ProtocolException($"Open of stream {streamId} from the accepting side");
        }

        TrunkStream stream;
        lock (_streamsLock)
        {
            if (streamId <= _lastId)
            {
                throw new ProtocolException($"Open of stream {streamId} after stream {_lastId} (ids must increase)");
            }

            _lastId = streamId;
            if (_deathReason is not null)
            {
                return;
            }

            if (_streams.Count >= Options.MaxStreams)
            {
                stream = TrunkStream.Refused(this, streamId);
            }
            else
            {
                stream = new TrunkStream(this, streamId, Options.InitialWindow, open: false);
                _streams.Add(streamId, stream);
                _accepted!.Writer.TryWrite(stream);
                return;
            }
        }

        _logger.LogWarning("Trunk: refused stream {Stream}, {Max} streams are open already", streamId, Options.MaxStreams);
        _writer.Schedule(stream);
    }

    /// <summary>The stream a frame is for; null if it was closed here already (the frame crossed our Reset or Fin).</summary>
    private TrunkStream? Find(TrunkFrameType type, uint streamId)
    {
        lock (_streamsLock)
        {
            if (_streams.TryGetValue(streamId, out var stream))
            {
                return stream;
            }

            if (streamId > _lastId)
            {
                throw new ProtocolException($"{type} frame for stream {streamId}, which was never opened");
            }

            return null;
        }
    }

    private void ThrowIfDead()
    {
        if (_deathReason is { } reason)
        {
            throw new IOException($"trunk lost: {reason}");
        }
    }
}
