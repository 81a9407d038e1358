using System.Buffers;
using System.Buffers.Binary;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// The trunk's one writer: streams with something to send wait in a round-robin queue; each turn takes at
/// most one Data frame from a stream (plus its control frames), so a bulk stream cannot starve an
/// interactive one. Frames are coalesced into one pooled buffer of up to
/// <see cref="TrunkOptions.WriteBatch"/> bytes and written with one write and flush: many small frames
/// cost one TLS record run and one syscall.
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
        var batch = ArrayPool<byte>.Shared.Rent(options.WriteBatch);
        try
        {
            while (true)
            {
                var length = Fill(batch.AsSpan(0, options.WriteBatch), out var wait, out var stopped);
                if (stopped)
                {
                    return;
                }

                if (length == 0)
                {
                    await wait.ConfigureAwait(false);
                    continue;
                }

                await transport.WriteAsync(batch.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                await transport.FlushAsync(cancellationToken).ConfigureAwait(false);
                onTraffic?.Invoke();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(batch);
        }
    }

    /// <summary>Fills <paramref name="batch"/>; if nothing was there, <paramref name="wait"/> is armed.</summary>
    private int Fill(Span<byte> batch, out ValueTask wait, out bool stopped)
    {
        wait = default;
        var position = 0;
        lock (_lock)
        {
            stopped = _stopped;
            if (stopped)
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
                    if (position == 0)
                    {
                        wait = _wake.Arm();
                    }

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
