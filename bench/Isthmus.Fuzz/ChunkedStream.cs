namespace Isthmus.Fuzz;

/// <summary>
/// A read-only stream over bytes that hands out at most a few bytes per read (sizes from a fixed pattern), so a
/// parser sees its input split at awkward places as on a real socket. Reads complete synchronously, which keeps
/// the parser's work, and its allocations, on the caller's thread.
/// </summary>
public sealed class ChunkedStream(byte[] data, int seed) : Stream
{
    private static readonly int[] Sizes = [1, 7, 4096, 2, 3, 65536, 5, 96, 1 << 20, 13];
    private int _position;
    private int _reads = seed;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => data.Length;

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = Math.Min(Math.Min(buffer.Length, data.Length - _position), Sizes[(uint)_reads++ % Sizes.Length]);
        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
