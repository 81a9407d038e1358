using System.Buffers;

namespace Isthmus.Core.Wire;

/// <summary>
/// The layer between a WAN leg's <see cref="System.Net.Security.SslStream"/> and its socket. TLS moves at most
/// 16 KiB of data per record, and SslStream reads and writes its inner stream a record at a time: a 256 KiB trunk
/// batch became 16 sends, and the peer's trunk reader got one record per receive (15 KB on average, measured),
/// each a syscall with its own ACK processing. This layer turns that back into one large send per batch and
/// one large receive per refill:
/// <list type="bullet">
/// <item>Reads: what the caller asks for comes out of a pooled buffer refilled with one large read of the inner
/// stream. It waits for data with a zero-byte read first, so an idle connection holds no buffer.</item>
/// <item>Writes: between <see cref="BeginBatch"/> and <see cref="EndBatchAsync"/> (one SslStream write, see
/// <see cref="WanTlsStream"/>) they are gathered and go out in one write. Outside a batch they pass straight
/// through, so the handshake and every other caller see an unbuffered stream.</item>
/// </list>
/// One reader and one writer may use it at once (their state is separate), like a socket.
/// </summary>
public sealed class RecordBatchingStream(Stream inner) : Stream
{
    /// <summary>One refill of the read buffer: what a trunk's reader asks of TLS in one read.</summary>
    private const int ReadChunk = 256 * 1024;

    /// <summary>A write batch: a 256 KiB trunk batch as TLS records (16 per 256 KiB, 22 bytes of overhead each) fits.</summary>
    private const int WriteChunk = 512 * 1024;

    private byte[]? _read;
    private int _readStart;
    private int _readEnd;
    private byte[]? _write;
    private int _written;
    private bool _batching;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_read is not null)
        {
            return TakeBuffered(buffer.Span);
        }

        if (buffer.IsEmpty || buffer.Length >= ReadChunk)
        {
            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        await inner.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        var chunk = ArrayPool<byte>.Shared.Rent(ReadChunk);
        int n;
        try
        {
            n = await inner.ReadAsync(chunk.AsMemory(0, ReadChunk), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(chunk);
            throw;
        }

        if (n == 0)
        {
            ArrayPool<byte>.Shared.Return(chunk);
            return 0;
        }

        _read = chunk;
        _readStart = 0;
        _readEnd = n;
        return TakeBuffered(buffer.Span);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Writes from here on are gathered until <see cref="EndBatchAsync"/>.</summary>
    public void BeginBatch() => _batching = true;

    /// <summary>Writes what the batch gathered, in one write, and ends it.</summary>
    public async ValueTask EndBatchAsync(CancellationToken cancellationToken)
    {
        _batching = false;
        await DrainAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends a batch whose write failed: the connection is broken, what was gathered is dropped.</summary>
    public void AbandonBatch()
    {
        _batching = false;
        ReturnWriteBuffer();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_batching)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (_written + buffer.Length > WriteChunk)
        {
            await DrainAsync(cancellationToken).ConfigureAwait(false);
            if (buffer.Length > WriteChunk)
            {
                await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
                return;
            }
        }

        _write ??= ArrayPool<byte>.Shared.Rent(WriteChunk);
        buffer.Span.CopyTo(_write.AsSpan(_written));
        _written += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await DrainAsync(cancellationToken).ConfigureAwait(false);
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// Disposes the inner stream. Buffers still held are left to the garbage collector rather than returned to
    /// the pool: a read or write may still be running on another thread.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private int TakeBuffered(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, _readEnd - _readStart);
        _read.AsSpan(_readStart, n).CopyTo(destination);
        _readStart += n;
        if (_readStart == _readEnd)
        {
            ArrayPool<byte>.Shared.Return(_read!);
            _read = null;
        }

        return n;
    }

    private async ValueTask DrainAsync(CancellationToken cancellationToken)
    {
        if (_written == 0)
        {
            ReturnWriteBuffer();
            return;
        }

        try
        {
            await inner.WriteAsync(_write.AsMemory(0, _written), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ReturnWriteBuffer();
        }
    }

    private void ReturnWriteBuffer()
    {
        if (_write is { } write)
        {
            _write = null;
            _written = 0;
            ArrayPool<byte>.Shared.Return(write);
        }
    }
}
