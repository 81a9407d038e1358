using System.Buffers.Binary;
using System.Runtime.ExceptionServices;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// The trunk's one writer: streams with something to send wait in a round-robin queue; each turn takes at
/// most one Data frame from a stream (plus its control frames), so a bulk stream cannot starve an
/// interactive one. Frames are coalesced into one buffer of up to
/// <see cref="TrunkOptions.WriteBatch"/> bytes and written with one write and flush: many small frames
/// cost one TLS record run and one syscall. When the trunk is idle, a stream that queues bytes writes the
/// batch itself (<see cref="ScheduleWriteThroughAsync"/>) instead of waking the loop.
/// </summary>
internal sealed class TrunkWriter(TrunkOptions options)
{
    private readonly Lock _lock = new();
    private readonly Queue<TrunkStream> _ready = new();
    private readonly TrunkWaiter _wake = new();
    private long _ping;
    private long _pong;
    private bool _pingPending;
    private bool _pongPending;
    private bool _stopped;

    // Set by RunAsync. The batch and the transport belong to whoever holds _flushing: the writer loop or one
    // write-through caller, never both (a TLS stream takes one write at a time).
    private byte[] _batch = null!;
    private Stream? _transport;
    private Action? _onTraffic;
    private CancellationToken _cancellation;
    private bool _flushing;
    private Exception? _writeThroughFailure;

    public void Schedule(TrunkStream stream)
    {
        lock (_lock)
        {
            if (stream.InWriterQueue || _stopped)
            {
                return;
            }

            stream.InWriterQueue = true;
            _ready.Enqueue(stream);
            _wake.Wake();
        }
    }

    public void SendPing(long body)
    {
        lock (_lock)
        {
            _ping = body;
            _pingPending = true;
            _wake.Wake();
        }
    }

    /// <summary>Answers a Ping; several before the writer runs are answered once, with the latest body.</summary>
    public void SendPong(long body)
    {
        lock (_lock)
        {
            _pong = body;
            _pongPending = true;
            _wake.Wake();
        }
    }

    public void Stop()
    {
        lock (_lock)
        {
            _stopped = true;
            _ready.Clear();
            _wake.Wake();
        }
    }

    /// <summary>Writes until stopped (returns) or the transport fails (throws).</summary>
    public async Task RunAsync(Stream transport, Action? onTraffic, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _transport = transport;
            _onTraffic = onTraffic;
            _cancellation = cancellationToken;
            _batch = GC.AllocateUninitializedArray<byte>(options.WriteBatch);
        }

        while (true)
        {
            ValueTask wait = default;
            var flush = false;
            lock (_lock)
            {
                if (_writeThroughFailure is { } failure)
                {
                    ExceptionDispatchInfo.Throw(failure);
                }

                if (_stopped)
                {
                    return;
                }

                if (_flushing || !HasWorkLocked())
                {
                    wait = _wake.Arm();
                }
                else
                {
                    _flushing = flush = true;
                }
            }

            if (!flush)
            {
                await wait.ConfigureAwait(false);
                continue;
            }

            try
            {
                while (await FlushBatchAsync().ConfigureAwait(false))
                {
                }
            }
            finally
            {
                lock (_lock)
                {
                    _flushing = false;
                }
            }
        }
    }

    /// <summary>
    /// Schedules <paramref name="stream"/> (which just queued bytes) and, if nobody is writing to the transport,
    /// lets the caller write one batch itself instead of waking the writer loop: that saves a thread-pool hop
    /// and a wake-up per write when the trunk is not busy. If somebody is writing, the bytes wait for them and
    /// the task is complete at once. A failure here kills the trunk through the writer loop; the caller's
    /// bytes were queued, so its write succeeded, as before (the stream then fails with the trunk).
    /// </summary>
    public ValueTask ScheduleWriteThroughAsync(TrunkStream stream)
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return ValueTask.CompletedTask;
            }

            if (!stream.InWriterQueue)
            {
                stream.InWriterQueue = true;
                _ready.Enqueue(stream);
            }

            if (_flushing || _batch is null || _writeThroughFailure is not null)
            {
                _wake.Wake();
                return ValueTask.CompletedTask;
            }

            _flushing = true;
        }

        return WriteThroughCoreAsync();
    }

    private async ValueTask WriteThroughCoreAsync()
    {
        try
        {
            await FlushBatchAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            lock (_lock)
            {
                _writeThroughFailure ??= e;
            }
        }
        finally
        {
            lock (_lock)
            {
                _flushing = false;
                // Whatever is left (streams that queued meanwhile, a failure to report) goes to the writer loop.
                if (HasWorkLocked() || _writeThroughFailure is not null)
                {
                    _wake.Wake();
                }
            }
        }
    }

    /// <summary>Fills and writes one batch; false if there was nothing to write. Only the holder of <c>_flushing</c> calls it.</summary>
    private async ValueTask<bool> FlushBatchAsync()
    {
        var length = Fill(_batch.AsSpan(0, options.WriteBatch));
        if (length == 0)
        {
            return false;
        }

        await _transport!.WriteAsync(_batch.AsMemory(0, length), _cancellation).ConfigureAwait(false);
        await _transport.FlushAsync(_cancellation).ConfigureAwait(false);
        _onTraffic?.Invoke();
        return true;
    }

    private bool HasWorkLocked() => _ready.Count > 0 || _pingPending || _pongPending;

    /// <summary>Fills <paramref name="batch"/> with pending frames; 0 if there were none (or the writer stopped).</summary>
    private int Fill(Span<byte> batch)
    {
        var position = 0;
        lock (_lock)
        {
            if (_stopped)
            {
                return 0;
            }

            if (_pongPending)
            {
                position = Put(batch, position, TrunkFrameType.Pong, _pong);
                _pongPending = false;
            }

            if (_pingPending)
            {
                position = Put(batch, position, TrunkFrameType.Ping, _ping);
                _pingPending = false;
            }
        }

        while (true)
        {
            TrunkStream stream;
            lock (_lock)
            {
                if (!_ready.TryDequeue(out stream!))
                {
                    return position;
                }

                stream.InWriterQueue = false;
            }

            var before = position;
            var more = stream.TakeFrames(batch, ref position, options.MaxFrameData);
            if (more)
            {
                Schedule(stream);
                if (position == before)
                {
                    // Its next frame does not fit: the batch is full.
                    return position;
                }
            }

            if (batch.Length - position <= TrunkFrame.HeaderSize)
            {
                return position;
            }
        }
    }

    private static int Put(Span<byte> batch, int position, TrunkFrameType type, long body)
    {
        TrunkFrame.WriteHeader(batch[position..], type, 0, TrunkFrame.PingSize);
        BinaryPrimitives.WriteInt64BigEndian(batch[(position + TrunkFrame.HeaderSize)..], body);
        return position + TrunkFrame.HeaderSize + TrunkFrame.PingSize;
    }
}
