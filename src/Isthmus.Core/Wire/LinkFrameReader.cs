using System.Buffers.Binary;

namespace Isthmus.Core.Wire;

/// <summary>
/// Reads <see cref="LinkFrame"/>s from a stream with one reusable buffer, handing each frame's body to a
/// synchronous handler (which must copy what it keeps). Several small frames per read cost one syscall.
/// </summary>
public sealed class LinkFrameReader(Stream stream)
{
    private byte[] _buffer = new byte[256 * 1024];
    private int _start;
    private int _end;

    public delegate void FrameHandler(LinkFrameType type, ReadOnlySpan<byte> body);

    /// <summary>Reads until the stream ends cleanly (returns) or breaks (throws <see cref="ProtocolException"/> or I/O errors).</summary>
    public async Task RunAsync(FrameHandler handle, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(handle);
        while (true)
        {
            while (TryTakeFrame(out var type, out var bodyStart, out var bodyLength))
            {
                handle(type, _buffer.AsSpan(bodyStart, bodyLength));
            }

            Compact();
            var n = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (_end != _start)
                {
                    throw new ProtocolException($"link ended inside a frame ({_end - _start} bytes pending)");
                }

                return;
            }

            _end += n;
        }
    }

    private bool TryTakeFrame(out LinkFrameType type, out int bodyStart, out int bodyLength)
    {
        type = default;
        bodyStart = bodyLength = 0;
        var available = _end - _start;
        if (available < LinkFrame.PrefixSize)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(_buffer.AsSpan(_start));
        if (length < 1 || length > LinkFrame.MaxBody + 1)
        {
            throw new ProtocolException($"link frame of {length} bytes (allowed 1..{LinkFrame.MaxBody + 1})");
        }

        if (available < 4 + (long)length)
        {
            EnsureCapacity(4 + (int)length);
            return false;
        }

        type = (LinkFrameType)_buffer[_start + 4];
        bodyStart = _start + LinkFrame.PrefixSize;
        bodyLength = (int)length - 1;
        _start += 4 + (int)length;
        return true;
    }

    private void Compact()
    {
        if (_start == _end)
        {
            _start = _end = 0;
            return;
        }

        if (_start > 0 && _buffer.Length - _end < 64 * 1024)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
    }

    /// <summary>
    /// Makes room to read more of a frame that is not complete: at least 64 KiB (or the rest of the frame) after
    /// what is pending, moving the frame to the front and doubling the buffer only as its bytes arrive. The length
    /// field alone never buys memory: a peer announcing 4 MiB and sending ten bytes costs the usual buffer
    /// (fuzzing found the old code allocating the announced size at once).
    /// </summary>
    private void EnsureCapacity(int frameSize)
    {
        var pending = _end - _start;
        var wanted = Math.Min(frameSize, pending + (64 * 1024));
        if (wanted <= _buffer.Length - _start)
        {
            return;
        }

        var size = _buffer.Length;
        while (size < wanted)
        {
            size = (int)Math.Min(frameSize, 2L * size);
        }

        var target = size == _buffer.Length ? _buffer : new byte[size];
        Buffer.BlockCopy(_buffer, _start, target, 0, pending); // memmove semantics when target is _buffer
        _start = 0;
        _end = pending;
        _buffer = target;
    }
}
