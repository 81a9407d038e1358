using System.Buffers;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// A FIFO of bytes in pooled chunks (not thread-safe; the owner locks). Chunks grow with the backlog from
/// 4 KiB to 64 KiB, so a stream with a few bytes waiting holds a small buffer and a bulk stream few large
/// ones; an empty queue holds none, so idle streams cost no buffer memory.
/// </summary>
internal sealed class ByteQueue
{
    private const int MinChunk = 4 * 1024;
    private const int MaxChunk = 64 * 1024;

    private byte[]?[]? _ring;
    private int _first;
    private int _count;
    private int _readOffset;
    private int _writeOffset;

    public int Length { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        Length += data.Length;
        while (!data.IsEmpty)
        {
            if (_count > 0)
            {
                var last = _ring![(_first + _count - 1) % _ring.Length]!;
                var n = Math.Min(last.Length - _writeOffset, data.Length);
                if (n > 0)
                {
                    data[..n].CopyTo(last.AsSpan(_writeOffset));
                    _writeOffset += n;
                    data = data[n..];
                    continue;
                }
            }

            Push(ArrayPool<byte>.Shared.Rent(Math.Clamp(Length, MinChunk, MaxChunk)));
        }
    }

    /// <summary>Moves up to destination's length from the head; returns how many.</summary>
    public int Take(Span<byte> destination)
    {
        var total = 0;
        while (total < destination.Length && _count > 0)
        {
            var head = _ring![_first]!;
            var end = _count == 1 ? _writeOffset : head.Length;
            var n = Math.Min(end - _readOffset, destination.Length - total);
            head.AsSpan(_readOffset, n).CopyTo(destination[total..]);
            total += n;
            _readOffset += n;
            if (_readOffset == end)
            {
                PopHead();
            }
        }

        Length -= total;
        return total;
    }

    public void Clear()
    {
        while (_count > 0)
        {
            PopHead();
        }

        Length = 0;
    }

    private void Push(byte[] chunk)
    {
        _ring ??= new byte[]?[4];
        if (_count == _ring.Length)
        {
            var grown = new byte[]?[_ring.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                grown[i] = _ring[(_first + i) % _ring.Length];
            }

            _ring = grown;
            _first = 0;
        }

        _ring[(_first + _count) % _ring.Length] = chunk;
        _count++;
        _writeOffset = 0;
    }

    private void PopHead()
    {
        ArrayPool<byte>.Shared.Return(_ring![_first]!);
        _ring[_first] = null;
        _first = (_first + 1) % _ring.Length;
        _count--;
        _readOffset = 0;
        if (_count == 0)
        {
            _first = 0;
            _writeOffset = 0;
        }
    }
}
