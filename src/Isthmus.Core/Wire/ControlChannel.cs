using System.Buffers.Binary;
using System.Text.Json;

namespace Isthmus.Core.Wire;

/// <summary>
/// Length-prefixed JSON frames (u32 big-endian length, at most <see cref="MaxFrame"/> bytes) over an
/// authenticated stream. Oversized or malformed frames end the channel with a <see cref="ProtocolException"/>.
/// A frame's buffer grows with the bytes that actually arrive, never to what its length field claims, so a
/// peer that announces 4 MiB and sends ten bytes costs ten bytes, not 4 MiB.
/// </summary>
public sealed class ControlChannel : IAsyncDisposable
{
    public const int MaxFrame = 4 << 20; // a directory of tens of thousands of nodes

    /// <summary>
    /// What a router accepts from a node: enrol, ping and leave are a few hundred bytes; only the router → node
    /// directory needs <see cref="MaxFrame"/>. The peer is not yet authenticated when it sends its first frame.
    /// </summary>
    public const int MaxNodeFrame = 64 << 10;

    /// <summary>Buffer allocated up front for a frame; larger frames grow it as their bytes arrive.</summary>
    private const int InitialBuffer = 16 << 10;

    private readonly Stream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly int _maxReceive;

    /// <param name="maxReceive">The largest frame this side accepts (<see cref="MaxFrame"/> or <see cref="MaxNodeFrame"/>).</param>
    public ControlChannel(Stream stream, int maxReceive = MaxFrame)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxReceive, MaxFrame);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxReceive);
        _stream = stream;
        _maxReceive = maxReceive;
    }

    public async Task SendAsync(ControlMessage message, CancellationToken cancellationToken)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(message, ControlJsonContext.Default.ControlMessage);
        var frame = new byte[4 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)payload.Length);
        payload.CopyTo(frame, 4);
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Reads the next message, or null at a clean end of stream.</summary>
    public async Task<ControlMessage?> ReceiveAsync(CancellationToken cancellationToken)
    {
        var lengthBytes = new byte[4];
        if (!await StreamIo.ReadExactOrEndAsync(_stream, lengthBytes, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(lengthBytes);
        if (length == 0 || length > _maxReceive)
        {
            throw new ProtocolException($"control frame of {length} bytes (allowed 1..{_maxReceive})");
        }

        var payload = await ReadPayloadAsync((int)length, cancellationToken).ConfigureAwait(false);

        try
        {
            return JsonSerializer.Deserialize(payload, ControlJsonContext.Default.ControlMessage)
                ?? throw new ProtocolException("control frame is JSON null");
        }
        catch (JsonException e)
        {
            throw new ProtocolException($"control frame is not a valid message: {e.Message}");
        }
    }

    private async Task<byte[]> ReadPayloadAsync(int length, CancellationToken cancellationToken)
    {
        var payload = new byte[Math.Min(length, InitialBuffer)];
        var read = 0;
        while (true)
        {
            var n = await _stream.ReadAsync(payload.AsMemory(read), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new ProtocolException($"control frame truncated ({read} of {length} bytes)");
            }

            read += n;
            if (read == length)
            {
                return payload;
            }

            if (read == payload.Length)
            {
                Array.Resize(ref payload, (int)Math.Min(length, 2L * payload.Length));
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _writeLock.Dispose();
        return _stream.DisposeAsync();
    }
}
