using System.Buffers.Binary;
using System.Text.Json;

namespace Isthmus.Core.Wire;

/// <summary>
/// Length-prefixed JSON frames (u32 big-endian length, at most <see cref="MaxFrame"/> bytes) over an
/// authenticated stream. Oversized or malformed frames end the channel with a <see cref="ProtocolException"/>.
/// </summary>
public sealed class ControlChannel : IAsyncDisposable
{
    public const int MaxFrame = 4 << 20; // a directory of tens of thousands of nodes
    private readonly Stream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public ControlChannel(Stream stream) => _stream = stream;

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
        if (length == 0 || length > MaxFrame)
        {
            throw new ProtocolException($"control frame of {length} bytes (allowed 1..{MaxFrame})");
        }

        var payload = new byte[length];
        if (!await StreamIo.ReadExactOrEndAsync(_stream, payload, cancellationToken).ConfigureAwait(false))
        {
            throw new ProtocolException("control frame truncated");
        }

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

    public ValueTask DisposeAsync()
    {
        _writeLock.Dispose();
        return _stream.DisposeAsync();
    }
}
