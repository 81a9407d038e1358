using System.Runtime.CompilerServices;
using Isthmus.Core.Wire;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// One virtual stream of a <see cref="Trunk"/>, with a TCP connection's behaviour: ordered bytes,
/// half-close (<see cref="ShutdownSend"/>; reads return 0 after the peer's), reset (<see cref="Abort"/>;
/// the peer's reads and writes throw <see cref="IOException"/>), per-stream flow control (a reader that
/// does not read stops only its own sender), and <see cref="IOException"/> ("trunk lost: ...") when the
/// trunk dies.
/// </summary>
/// <remarks>
/// <para>
/// Reads return what is queued (at most the buffer), waiting if nothing is; a zero-byte read waits for data
/// without taking any (so an idle reader holds no buffer). Writes copy into the stream's send queue and
/// complete once queued: they wait while the peer's credit is used up or the queue holds
/// <see cref="TrunkOptions.WriteBatch"/> bytes the trunk's writer has not taken yet.
/// </para>
/// <para>
/// Dispose: if the peer's Fin has arrived (its direction is complete) and no write is pending, this sends
/// our Fin after what is queued, if not sent yet, and the stream ends cleanly; otherwise (the peer might
/// still send, or a write was cut off) it sends a Reset, so the peer learns that nobody reads any more
/// rather than waiting for credit for ever. Call <see cref="ShutdownSend"/> first and read to 0 for a
/// clean end in both directions.
/// </para>
/// <para>One read and one write may be pending at a time (from different threads).</para>
/// </remarks>
public sealed class TrunkStream : Stream, ICarriedConnection
{
    private readonly Trunk _trunk;
    private readonly Lock _lock = new();
    private readonly ByteQueue _received = new();
    private readonly ByteQueue _unsent = new();
    private TrunkWaiter? _readWaiter;
    private TrunkWaiter? _writeWaiter;

    // Receive direction: what the peer may still send, and what our reader consumed but we did not grant yet.
    private int _receiveWindow;
    private int _consumedUngranted;
    private bool _peerFin;

    // Send direction.
    private int _sendCredit;
    private bool _finQueued;
    private bool _finSent;

    // Frames for the trunk's writer.
    private bool _openPending;
    private bool _resetPending;
    private int _creditToSend;

    /// <summary>Why reads and writes fail (reset, trunk lost); null while the stream works.</summary>
    private string? _failure;

    /// <summary>The peer reset the stream: what it sent before stays readable (as TCP delivers data before a RST).</summary>
    private bool _peerReset;
    private bool _disposed;

    internal TrunkStream(Trunk trunk, uint id, int window, bool open)
    {
        _trunk = trunk;
        Id = id;
        _receiveWindow = window;
        _sendCredit = window;
        _openPending = open;
    }

    /// <summary>The stream id on the trunk (assigned by the dialling side, 1, 2, 3, ...).</summary>
    public uint Id { get; }

    /// <summary>For log lines.</summary>
    public string Description => $"trunk stream {Id}";

    /// <summary>Scheduling flag of the trunk's writer (guarded by its lock).</summary>
    internal bool InWriterQueue { get; set; }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>An Open the server refuses (too many streams): only a Reset goes back.</summary>
    internal static TrunkStream Refused(Trunk trunk, uint id) => new(trunk, id, 0, open: false)
    {
        _failure = "stream refused",
        _resetPending = true,
    };

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        bool done, grant;
        int read;
        try
        {
            lock (_lock)
            {
                done = TryReadLocked(buffer.Span, out read, out grant);
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            return ValueTask.FromException<int>(e);
        }

        if (grant)
        {
            _trunk.Schedule(this);
        }

        return done ? ValueTask.FromResult(read) : ReadWaitingAsync(buffer, cancellationToken);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        int admitted;
        try
        {
            lock (_lock)
            {
                admitted = AdmitLocked(buffer.Span);
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            return ValueTask.FromException(e);
        }

        if (admitted > 0)
        {
            _trunk.Schedule(this);
        }

        return admitted == buffer.Length ? ValueTask.CompletedTask : WriteWaitingAsync(buffer[admitted..], cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Nothing to do: writes are with the trunk's writer when they complete.</summary>
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// Our half-close: a Fin after everything written so far (once); writes afterwards throw. Nothing to do on
    /// a stream that was reset, disposed or lost with its trunk (as shutting down a reset socket): its reads
    /// and writes report that.
    /// </summary>
    public void ShutdownSend()
    {
        lock (_lock)
        {
            if (_finQueued || _failure is not null || _disposed)
            {
                return;
            }

            if (_writeWaiter is { Armed: true })
            {
                throw new InvalidOperationException("a write is still pending on this stream");
            }

            _finQueued = true;
        }

        _trunk.Schedule(this);
    }

    /// <summary>
    /// Abortive close: fails our pending reads and writes, drops what was received, and sends a Reset after the
    /// bytes already written (a router that refuses a leg writes its reply and aborts at once: the reply must
    /// arrive, as on a TCP connection, where written bytes leave before the RST).
    /// </summary>
    public void Abort()
    {
        lock (_lock)
        {
            if (_failure is not null || _disposed)
            {
                return;
            }

            _failure = "stream aborted locally";
            _resetPending = true;
            _received.Clear();
            _creditToSend = 0;
            _readWaiter?.Wake();
            _writeWaiter?.Wake();
        }

        _trunk.Forget(this);
        _trunk.Schedule(this);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Release();
        }

        base.Dispose(disposing);
    }

    private void Release()
    {
        var schedule = false;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_failure is null)
            {
                if (_peerFin && _writeWaiter is not { Armed: true })
                {
                    schedule = !_finQueued;
                    _finQueued = true;
                    _received.Clear();
                    _readWaiter?.Wake();
                }
                else
                {
                    // Like Abort: what was written still leaves, then the Reset (a leg reply before a dispose).
                    _failure = "stream disposed";
                    _resetPending = true;
                    schedule = true;
                    _received.Clear();
                    _creditToSend = 0;
                    _readWaiter?.Wake();
                    _writeWaiter?.Wake();
                }
            }
            else
            {
                _received.Clear(); // what a peer sent before its reset, never read
            }
        }

        _trunk.Forget(this);
        if (schedule)
        {
            _trunk.Schedule(this);
        }
    }

    /// <summary>The trunk died: everything pending and later fails with <paramref name="message"/>.</summary>
    internal void Fail(string message)
    {
        lock (_lock)
        {
            _failure ??= message;
            _resetPending = false;
            DropLocked();
        }
    }

    internal void DeliverData(ReadOnlySpan<byte> body)
    {
        lock (_lock)
        {
            if (body.Length > _receiveWindow)
            {
                throw new ProtocolException($"stream {Id} sent {body.Length} bytes over its credit of {_receiveWindow}");
            }

            if (_peerFin)
            {
                throw new ProtocolException($"Data on stream {Id} after its Fin");
            }

            _receiveWindow -= body.Length;
            if (_failure is null && !_disposed)
            {
                _received.Append(body);
                _readWaiter?.Wake();
            }
        }
    }

    internal void DeliverFin()
    {
        lock (_lock)
        {
            if (_peerFin)
            {
                throw new ProtocolException($"second Fin on stream {Id}");
            }

            _peerFin = true;
            _readWaiter?.Wake();
        }
    }

    internal void DeliverReset()
    {
        lock (_lock)
        {
            if (_failure is null)
            {
                // A router answers a leg it refuses (a reply) and then aborts it: the reply must still be read.
                _failure = "stream reset by peer";
                _resetPending = false;
                _peerReset = true;
                _unsent.Clear();
                _creditToSend = 0;
                _readWaiter?.Wake();
                _writeWaiter?.Wake();
            }
        }
    }

    internal void DeliverCredit(uint increment)
    {
        lock (_lock)
        {
            if (increment == 0 || _sendCredit + (long)increment > int.MaxValue)
            {
                throw new ProtocolException($"Credit of {increment} on stream {Id} (window {_sendCredit})");
            }

            _sendCredit += (int)increment;
            _writeWaiter?.Wake();
        }
    }

    /// <summary>
    /// The trunk's writer: appends this stream's pending frames to <paramref name="batch"/> at
    /// <paramref name="position"/> (Open, Reset, Credit, at most one Data frame for round-robin fairness,
    /// Fin); true if more is left.
    /// </summary>
    internal bool TakeFrames(Span<byte> batch, ref int position, int maxFrameData)
    {
        lock (_lock)
        {
            if (_openPending)
            {
                if (!Fits(batch, position, 0))
                {
                    return true;
                }

                TrunkFrame.WriteHeader(batch[position..], TrunkFrameType.Open, Id, 0);
                position += TrunkFrame.HeaderSize;
                _openPending = false;
            }

            if (_resetPending && _unsent.Length == 0)
            {
                if (!Fits(batch, position, 0))
                {
                    return true;
                }

                TrunkFrame.WriteHeader(batch[position..], TrunkFrameType.Reset, Id, 0);
                position += TrunkFrame.HeaderSize;
                _resetPending = false;
                return false;
            }

            if (_failure is not null && !_resetPending)
            {
                return false;
            }

            if (_creditToSend > 0)
            {
                if (!Fits(batch, position, TrunkFrame.CreditSize))
                {
                    return true;
                }

                TrunkFrame.WriteHeader(batch[position..], TrunkFrameType.Credit, Id, TrunkFrame.CreditSize);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(batch[(position + TrunkFrame.HeaderSize)..], (uint)_creditToSend);
                position += TrunkFrame.HeaderSize + TrunkFrame.CreditSize;
                _creditToSend = 0;
            }

            if (_unsent.Length > 0)
            {
                var take = Math.Min(Math.Min(_unsent.Length, maxFrameData), batch.Length - position - TrunkFrame.HeaderSize);
                if (take <= 0)
                {
                    return true;
                }

                TrunkFrame.WriteHeader(batch[position..], TrunkFrameType.Data, Id, take);
                _unsent.Take(batch.Slice(position + TrunkFrame.HeaderSize, take));
                position += TrunkFrame.HeaderSize + take;
                _writeWaiter?.Wake();
            }

            if (_unsent.Length == 0 && _finQueued && !_finSent)
            {
                if (!Fits(batch, position, 0))
                {
                    return true;
                }

                TrunkFrame.WriteHeader(batch[position..], TrunkFrameType.Fin, Id, 0);
                position += TrunkFrame.HeaderSize;
                _finSent = true;
            }

            return _unsent.Length > 0 || _resetPending || (_finQueued && !_finSent);
        }
    }

    private static bool Fits(Span<byte> batch, int position, int body) => batch.Length - position >= TrunkFrame.HeaderSize + body;

    /// <summary>True if done (bytes or end of stream in <paramref name="read"/>); false: nothing queued yet.</summary>
    private bool TryReadLocked(Span<byte> destination, out int read, out bool grant)
    {
        grant = false;
        read = 0;
        if (_peerReset && !_disposed && _received.Length > 0)
        {
            read = destination.IsEmpty ? 0 : _received.Take(destination);
            return true;
        }

        ThrowIfUnusableLocked();
        if (_received.Length > 0)
        {
            if (!destination.IsEmpty)
            {
                read = _received.Take(destination);
                grant = GrantLocked(read);
            }

            return true;
        }

        return _peerFin;
    }

    /// <summary>
    /// Credit goes back as the reader consumes, not as bytes arrive, so a slow reader stops its sender:
    /// after a quarter window, or when the queue empties with at least 1/64 of the window consumed. The
    /// sender still has the rest of its window (it waits only once the whole window is unanswered, and then
    /// the reader's consumption reaches a quarter), so an interactive stream is never left waiting; what the
    /// 1/64 saves is a Credit frame (a write here, a wake-up of the peer's reader) for every small message:
    /// a new connection's leg header, its reply and first bytes cost three of them before.
    /// </summary>
    private bool GrantLocked(int consumed)
    {
        _consumedUngranted += consumed;
        var window = _trunk.Options.InitialWindow;
        if (_peerFin || _consumedUngranted == 0 || (_consumedUngranted < window / 4 && (_received.Length > 0 || _consumedUngranted < window / 64)))
        {
            return false;
        }

        _receiveWindow += _consumedUngranted;
        _creditToSend += _consumedUngranted;
        _consumedUngranted = 0;
        return true;
    }

    /// <summary>How many bytes of <paramref name="data"/> went into the send queue (0: wait).</summary>
    private int AdmitLocked(ReadOnlySpan<byte> data)
    {
        ThrowIfUnusableLocked();
        if (_finQueued)
        {
            throw new InvalidOperationException("write after ShutdownSend");
        }

        var n = Math.Min(data.Length, Math.Min(_sendCredit, _trunk.Options.WriteBatch - _unsent.Length));
        if (n <= 0)
        {
            return 0;
        }

        _unsent.Append(data[..n]);
        _sendCredit -= n;
        return n;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadWaitingAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            ValueTask wait;
            bool done, grant;
            int read;
            lock (_lock)
            {
                done = TryReadLocked(buffer.Span, out read, out grant);
                if (!done)
                {
                    _readWaiter ??= new TrunkWaiter();
                    if (_readWaiter.Armed)
                    {
                        throw new InvalidOperationException("another read is pending on this stream");
                    }

                    wait = _readWaiter.Arm();
                }
                else
                {
                    wait = default;
                }
            }

            if (grant)
            {
                _trunk.Schedule(this);
            }

            if (done)
            {
                return read;
            }

            using (cancellationToken.UnsafeRegister(static s => ((TrunkStream)s!).WakeReader(), this))
            {
                await wait.ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteWaitingAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            ValueTask wait = default;
            int admitted;
            lock (_lock)
            {
                admitted = AdmitLocked(buffer.Span);
                buffer = buffer[admitted..];
                if (!buffer.IsEmpty)
                {
                    _writeWaiter ??= new TrunkWaiter();
                    if (_writeWaiter.Armed)
                    {
                        throw new InvalidOperationException("another write is pending on this stream");
                    }

                    wait = _writeWaiter.Arm();
                }
            }

            if (admitted > 0)
            {
                _trunk.Schedule(this);
            }

            if (buffer.IsEmpty)
            {
                return;
            }

            using (cancellationToken.UnsafeRegister(static s => ((TrunkStream)s!).WakeWriter(), this))
            {
                await wait.ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private void WakeReader()
    {
        lock (_lock)
        {
            _readWaiter?.Wake();
        }
    }

    private void WakeWriter()
    {
        lock (_lock)
        {
            _writeWaiter?.Wake();
        }
    }

    private void ThrowIfUnusableLocked()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_failure is not null)
        {
            throw new IOException(_failure);
        }
    }

    /// <summary>Drops queued bytes both ways (returning their buffers) and wakes waiters to see the failure.</summary>
    private void DropLocked()
    {
        _received.Clear();
        _unsent.Clear();
        _creditToSend = 0;
        _readWaiter?.Wake();
        _writeWaiter?.Wake();
    }
}
