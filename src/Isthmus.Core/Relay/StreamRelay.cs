using System.Buffers;

namespace Isthmus.Core.Relay;

/// <summary>
/// Copies bytes both ways between two endpoints until both directions have ended. EOF on one side becomes
/// a half-close on the other; an error (reset) on either side resets the other, so programs see what a
/// direct TCP connection would have shown them.
/// </summary>
public static class StreamRelay
{
    /// <summary>Per-direction buffer. socat's fastest setting here was 128 KiB; larger buys nothing on loopback.</summary>
    public const int BufferSize = 128 * 1024;

    public static async Task<RelayResult> RunAsync(RelayEndpoint a, RelayEndpoint b, CancellationToken cancellationToken = default)
    {
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var forward = CopyAsync(a, b, aborted);
        var backward = CopyAsync(b, a, aborted);
        var results = await Task.WhenAll(forward, backward).ConfigureAwait(false);
        var result = new RelayResult(results[0].Bytes, results[1].Bytes, results[0].Outcome, results[1].Outcome);
        if (result.Failed)
        {
            a.Abort();
            b.Abort();
        }
        else
        {
            await a.DisposeAsync().ConfigureAwait(false);
            await b.DisposeAsync().ConfigureAwait(false);
        }

        return result;
    }

    private static async Task<(long Bytes, CopyOutcome Outcome)> CopyAsync(RelayEndpoint from, RelayEndpoint to, CancellationTokenSource aborted)
    {
        long total = 0;
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                if (buffer is null)
                {
                    // Wait for data without holding a buffer, so thousands of idle streams cost no memory.
                    // Only on plain sockets: TLS streams keep their buffer (SslStream buffers records itself).
                    if (!from.IsTls)
                    {
                        await from.Stream.ReadAsync(Memory<byte>.Empty, aborted.Token).ConfigureAwait(false);
                    }

                    buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                }

                var n = await from.Stream.ReadAsync(buffer, aborted.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    await to.ShutdownSendAsync().ConfigureAwait(false);
                    return (total, CopyOutcome.Completed);
                }

                await to.Stream.WriteAsync(buffer.AsMemory(0, n), aborted.Token).ConfigureAwait(false);
                total += n;
                if (!from.IsTls && from.Available == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // IOException, SocketException, cancellation, and whatever a TLS library throws (OpenSSL
            // errors surface as CryptographicException subtypes): every one of them ends this stream only.
            // One side failed: stop the other direction too and reset both ends.
            await aborted.CancelAsync().ConfigureAwait(false);
            return (total, CopyOutcome.Failed);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }
}

public enum CopyOutcome
{
    Completed,
    Failed,
}

public readonly record struct RelayResult(long BytesAToB, long BytesBToA, CopyOutcome AToB, CopyOutcome BToA)
{
    public bool Failed => AToB == CopyOutcome.Failed || BToA == CopyOutcome.Failed;
}
