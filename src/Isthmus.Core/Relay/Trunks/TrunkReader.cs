using System.Buffers;
using System.Buffers.Binary;
using Isthmus.Core.Wire;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// Reads trunk frames in large chunks into one pooled buffer and hands each whole frame to a synchronous
/// handler (which copies what it keeps). Headers are checked as soon as they arrive, so an oversized or
/// unknown frame kills the trunk before its body is awaited.
/// </summary>
internal sealed class TrunkReader(Stream transport, int maxFrameData)
{
    public delegate void FrameHandler(TrunkFrameType type, uint streamId, ReadOnlySpan<byte> body);

    /// <summary>Reads until the transport ends cleanly (returns) or breaks (throws <see cref="ProtocolException"/> or I/O errors).</summary>
    public async Task RunAsync(FrameHandler handle, Action onBytes, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(256 * 1024, 2 * (maxFrameData + TrunkFrame.HeaderSize)));
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                while (TryTake(buffer, ref start, end, out var type, out var streamId, out var bodyStart, out var bodyLength))
                {
                    handle(type, streamId, buffer.AsSpan(bodyStart, bodyLength));
                }

                if (start == end)
                {
                    start = end = 0;
                }
                else if (buffer.Length - end < maxFrameData + TrunkFrame.HeaderSize)
                {
                    // Less than one frame: move it to the front so the next read can complete it.
                    buffer.AsSpan(start, end - start).CopyTo(buffer);
                    end -= start;
                    start = 0;
                }

                var n = await transport.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    if (end != start)
                    {
                        throw new ProtocolException($"connection ended inside a frame ({end - start} bytes pending)");
                    }

                    return;
                }

                end += n;
                onBytes();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private bool TryTake(byte[] buffer, ref int start, int end, out TrunkFrameType type, out uint streamId, out int bodyStart, out int bodyLength)
    {
        type = default;
        streamId = 0;
        bodyStart = bodyLength = 0;
        if (end - start < TrunkFrame.HeaderSize)
        {
            return false;
        }

        var header = buffer.AsSpan(start, TrunkFrame.HeaderSize);
        streamId = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[5..]);
        if (TrunkFrame.HeaderProblem(header[0], streamId, length, maxFrameData) is { } problem)
        {
            throw new ProtocolException(problem);
        }

        if (end - start < TrunkFrame.HeaderSize + (int)length)
        {
            return false;
        }

        type = (TrunkFrameType)header[0];
        bodyStart = start + TrunkFrame.HeaderSize;
        bodyLength = (int)length;
        start = bodyStart + bodyLength;
        return true;
    }
}
