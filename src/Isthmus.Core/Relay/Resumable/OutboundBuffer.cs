using System.Buffers;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// What one direction of a stream has read from its program and the peer has not acknowledged yet, in
/// stream order: from <see cref="Acked"/> to <see cref="End"/>. A position counts bytes, plus one for the FIN
/// after the last byte. Segments are the relay's own read buffers (pooled; payload after
/// <see cref="ResumableFrame.HeaderSize"/> spare bytes so a frame goes out in one write), so nothing is copied
/// to keep it for a resend; an acknowledgement returns them to the pool. While the WAN leg is down and the
/// memory bound is reached, further reads go to the router's <see cref="Spool"/> instead (if it has one), as
/// segments that name a place in this stream's <see cref="SpoolFile"/>; resends read them back from there.
/// </summary>
public sealed class OutboundBuffer : IDisposable
{
    private readonly Queue<Segment> _segments = new();
    private readonly Lock _lock = new();
    private readonly int _limit;
    private readonly BufferBudget _budget;
    /// <summary>Made when the buffer first fills (most streams never do).</summary>
    private AsyncSignal? _room;
    private readonly Spool? _spool;
    private SpoolFile? _file;
    private long _spooled;
    private long _reserved;
    private bool _spoolWriting;
    private volatile bool _spillAllowed;
    private long _acked;
    private long _end;
    private long _held;
    private bool _fin;
    private bool _disposed;

    public OutboundBuffer(int limit, BufferBudget budget, Spool? spool = null)
    {
        _limit = limit;
        _budget = budget;
        _spool = spool;
    }

    /// <summary>
    /// The stream's WAN leg is down (set by the session): only then does a full memory bound spill to the
    /// spool. A working but slow path pushes back on the program, as TCP would, rather than fill the disk.
    /// </summary>
    public bool SpillAllowed
    {
        get => _spillAllowed;
        set
        {
            _spillAllowed = value;
            if (value)
            {
                SignalRoom();
            }
        }
    }

    /// <summary>Bytes of this stream in its spool file (appended, not yet acknowledged).</summary>
    public long Spooled
    {
        get
        {
            lock (_lock)
            {
                return _spooled;
            }
        }
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
        long unspooled = 0;
        lock (_lock)
        {
            if (position < _acked || position > _end)
            {
                error = $"peer acknowledged {position}, outside [{_acked}, {_end}]";
                return false;
            }

            long spoolFreedTo = 0;
            while (_segments.TryPeek(out var head) && head.End <= position)
            {
                _segments.Dequeue();
                if (head.Array is { } array)
                {
                    freed += array.Length;
                    ArrayPool<byte>.Shared.Return(array);
                }
                else if (head.File is not null)
                {
                    unspooled += head.Length;
                    spoolFreedTo = head.FileOffset + head.Length;
                }
            }

            _acked = position;
            _held -= freed;
            if (unspooled > 0)
            {
                _spooled -= unspooled;
                _spool!.Release(unspooled);
                FreeSpoolTo(spoolFreedTo);
            }
        }

        if (freed > 0)
        {
            _budget.Add(-freed);
        }

        if (freed > 0 || unspooled > 0)
        {
            SignalRoom();
        }

        error = "";
        return true;
    }

    /// <summary>
    /// Where the next read from the program may go now: memory under the stream's limit and the router's
    /// budget; else, while the leg is down, the spool (reserving a whole read there); else nowhere.
    /// </summary>
    public ReadRoom RoomNow()
    {
        if (Held < _limit && !_budget.Exhausted)
        {
            return ReadRoom.Memory;
        }

        if (!_spillAllowed || _spool is null)
        {
            return ReadRoom.None;
        }

        lock (_lock)
        {
            if (_disposed || _reserved > 0 || !_spool.TryReserve(StreamRelay.BufferSize))
            {
                return ReadRoom.None;
            }

            _reserved = StreamRelay.BufferSize;
            return ReadRoom.Spool;
        }
    }

    /// <summary>Waits until a read has room (flow control of the program until then); see <see cref="RoomNow"/>.</summary>
    public async Task<ReadRoom> WaitForRoomAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var room = RoomNow();
            if (room != ReadRoom.None)
            {
                return room;
            }

            // Made only now (most streams never fill), and checked again after, so room freed meanwhile is seen.
            var signal = AsyncSignal.Made(ref _room);
            room = RoomNow();
            if (room != ReadRoom.None)
            {
                return room;
            }

            // The budget and the spool are shared: a poll bounds the wait for room freed by another stream.
            await signal.WaitAsync(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Appends a read made with <see cref="ReadRoom.Spool"/> room: its bytes go to the spool file and the array
    /// back to the pool. If the spool fails (disk full, I/O error), the bytes stay in memory instead (one read
    /// over the bound, nothing lost) and the spool is suspended, so the program is flow-controlled.
    /// </summary>
    public void AppendSpooled(byte[] array, int length)
    {
        SpoolFile? file;
        lock (_lock)
        {
            if (_disposed)
            {
                ReleaseReservationLocked();
                ArrayPool<byte>.Shared.Return(array);
                return;
            }

            file = _file ??= _spool!.TryCreateFile();
            _spoolWriting = file is not null;
        }

        long at = -1;
        if (file is not null)
        {
            try
            {
                at = file.Append(array.AsSpan(ResumableFrame.HeaderSize, length));
                _spool!.Succeeded();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                _spool!.Failed(e);
            }
        }

        lock (_lock)
        {
            _spoolWriting = false;
            var reserved = _reserved;
            _reserved = 0;
            if (at >= 0 && !_disposed)
            {
                // The read's reservation becomes the bytes it holds; the rest goes back.
                _segments.Enqueue(new Segment(_end, null, length, file, at));
                _end += length;
                _spooled += length;
                _spool!.Release(reserved - length);
                ArrayPool<byte>.Shared.Return(array);
                return;
            }

            _spool!.Release(reserved);
            if (_spooled == 0)
            {
                CloseFileLocked();
            }

            if (_disposed)
            {
                ArrayPool<byte>.Shared.Return(array);
                return;
            }
        }

        Append(array, length);
    }

    /// <summary>A read with <see cref="ReadRoom.Spool"/> room ended without bytes (EOF, error): give the reservation back.</summary>
    public void CancelReservation()
    {
        lock (_lock)
        {
            ReleaseReservationLocked();
        }
    }

    /// <summary>Reads a spooled segment's bytes from <paramref name="offset"/> within it (resends, first sends while spilled).</summary>
    public static void ReadSpooled(Segment segment, int offset, Span<byte> destination) =>
        segment.File!.Read(segment.FileOffset + offset, destination);

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
            if (_spooled > 0)
            {
                _spool!.Release(_spooled);
                _spooled = 0;
            }

            ReleaseReservationLocked();

            if (!_spoolWriting)
            {
                CloseFileLocked();
            }
        }

        _budget.Add(-freed);
    }

    private void SignalRoom() => AsyncSignal.SetIfMade(ref _room);

    private void ReleaseReservationLocked()
    {
        if (_reserved > 0)
        {
            _spool!.Release(_reserved);
            _reserved = 0;
        }
    }

    /// <summary>Frees the spool file up to <paramref name="offset"/>, or closes it once the stream's spool is empty.</summary>
    private void FreeSpoolTo(long offset)
    {
        if (_spooled == 0 && !_spoolWriting)
        {
            CloseFileLocked();
        }
        else
        {
            _file?.FreeTo(offset);
        }
    }

    private void CloseFileLocked()
    {
        _file?.Dispose();
        _file = null;
    }

    /// <summary>
    /// Payload bytes at <c>Array[HeaderSize..HeaderSize+Length]</c>, or in <c>File</c> at <c>FileOffset</c>
    /// (spooled), or the FIN (neither, one position).
    /// </summary>
    public readonly record struct Segment(long Start, byte[]? Array, int Length, SpoolFile? File = null, long FileOffset = 0)
    {
        public bool IsFin => Array is null && File is null;

        public bool IsSpooled => File is not null;

        public long End => Start + (IsFin ? 1 : Length);
    }
}
