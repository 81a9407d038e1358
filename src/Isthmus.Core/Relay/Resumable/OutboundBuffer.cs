using System.Buffers;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// What one direction of a stream has read from its program and the peer has not acknowledged yet, in
/// stream order: from <see cref="Acked"/> to <see cref="End"/>. A position counts bytes, plus one for the FIN
/// after the last byte. Segments are the relay's own read buffers (pooled; payload after
/// <see cref="ResumableFrame.HeaderSize"/> spare bytes so a frame goes out in one write), so nothing is copied
/// to keep it for a resend; an acknowledgement returns them to the pool.
/// </summary>
public sealed class OutboundBuffer : IDisposable
{
    private readonly Queue<Segment> _segments = new();
    private readonly Lock _lock = new();
    private readonly int _limit;
    private readonly BufferBudget _budget;
    private readonly AsyncSignal _room = new();
    private long _acked;
    private long _end;
    private long _held;
    private bool _fin;
    private bool _disposed;

    public OutboundBuffer(int limit, BufferBudget budget)
    {
        _limit = limit;
        _budget = budget;
    }

    public long Acked
    {
        get
        {
            lock (_lock)
            {
                return _acked;
            }
        }
    }

    public long End
    {
        get
        {
            lock (_lock)
            {
                return _end;
            }
        }
    }

    /// <summary>Bytes of buffers held (their capacity, which is what memory costs).</summary>
    public long Held
    {
        get
        {
            lock (_lock)
            {
                return _held;
            }
        }
    }

    /// <summary>The FIN was appended and the peer acknowledged everything up to and including it.</summary>
    public bool FinAcked
    {
        get
        {
            lock (_lock)
            {
                return _fin && _acked == _end;
            }
        }
    }

    /// <summary>Appends <paramref name="length"/> payload bytes at <c>array[HeaderSize..]</c>; the buffer now owns the array.</summary>
    public void Append(byte[] array, int length)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                ArrayPool<byte>.Shared.Return(array);
                return;
            }

            _segments.Enqueue(new Segment(_end, array, length));
            _end += length;
            _held += array.Length;
        }

        _budget.Add(array.Length);
    }

    public void AppendFin()
    {
        lock (_lock)
        {
            if (!_fin)
            {
                _fin = true;
                _segments.Enqueue(new Segment(_end, null, 0));
                _end += 1;
            }
        }
    }

    /// <summary>The segment that holds position <paramref name="position"/>, if it was appended yet.</summary>
    public bool TryGet(long position, out Segment segment)
    {
        lock (_lock)
        {
            foreach (var s in _segments)
            {
                if (position < s.End)
                {
                    segment = s;
                    return true;
                }
            }
        }

        segment = default;
        return false;
    }

    /// <summary>The peer has everything before <paramref name="position"/>: frees what it covers. False (and why) if impossible.</summary>
    public bool TryAck(long position, out string error)
    {
        long freed = 0;
        lock (_lock)
        {
            if (position < _acked || position > _end)
            {
                error = $"peer acknowledged {position}, outside [{_acked}, {_end}]";
                return false;
            }

            while (_segments.TryPeek(out var head) && head.End <= position)
            {
                _segments.Dequeue();
                if (head.Array is { } array)
                {
                    freed += array.Length;
                    ArrayPool<byte>.Shared.Return(array);
                }
            }

            _acked = position;
            _held -= freed;
        }

        if (freed > 0)
        {
            _budget.Add(-freed);
            _room.Set();
        }

        error = "";
        return true;
    }

    /// <summary>Waits until this stream is under its limit and the router under its budget (flow control of the program).</summary>
    public async Task WaitForRoomAsync(CancellationToken cancellationToken)
    {
        while (Held >= _limit || _budget.Exhausted)
        {
            // The budget is shared: a poll bounds the wait for room freed by another stream.
            await _room.WaitAsync(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        long freed = 0;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var s in _segments)
            {
                if (s.Array is { } array)
                {
                    freed += array.Length;
                    ArrayPool<byte>.Shared.Return(array);
                }
            }

            _segments.Clear();
            _held = 0;
        }

        _budget.Add(-freed);
        _room.Dispose();
    }

    /// <summary>Payload bytes at <c>Array[HeaderSize..HeaderSize+Length]</c>, or the FIN (null array, one position).</summary>
    public readonly record struct Segment(long Start, byte[]? Array, int Length)
    {
        public bool IsFin => Array is null;

        public long End => Start + (IsFin ? 1 : Length);
    }
}
