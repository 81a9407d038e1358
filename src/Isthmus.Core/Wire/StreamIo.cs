namespace Isthmus.Core.Wire;

/// <summary>Exact-length reads, which Stream lacks in the form we need (end of stream before any byte is not an error).</summary>
public static class StreamIo
{
    /// <summary>Fills <paramref name="buffer"/>; false if the stream ended before the first byte.</summary>
    public static async ValueTask<bool> ReadExactOrEndAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[read..], cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (read == 0)
                {
                    return false;
                }

                throw new ProtocolException($"stream ended after {read} of {buffer.Length} bytes");
            }

            read += n;
        }

        return true;
    }
}
