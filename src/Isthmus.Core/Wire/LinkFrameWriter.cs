using System.Threading.Channels;

namespace Isthmus.Core.Wire;

/// <summary>
/// Sends <see cref="LinkFrame"/>s over a stream from a bounded queue. When the queue is full the frame is
/// dropped and counted, as a router drops datagrams it cannot forward: UDP must not build unbounded queues
/// or stall the sender. Frames queued together go out in one write.
/// </summary>
public sealed class LinkFrameWriter
{
    private const int BatchBytes = 256 * 1024;
    private readonly Channel<byte[]> _queue;
    private long _dropped;

    public LinkFrameWriter(int capacity = 4096)
    {
        _queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(capacity)
        {
            // With Wait, TryWrite fails at once when full (nothing waits): the drop is ours to count.
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    /// <summary>Frames dropped because the queue was full or the writer had stopped.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues a complete frame; false (and counted) if it was dropped.</summary>
    public bool TrySend(byte[] frame)
    {
        if (!_queue.Writer.TryWrite(frame))
        {
            Interlocked.Increment(ref _dropped);
            return false;
        }

        return true;
    }

    /// <summary>Writes queued frames to <paramref name="stream"/> until cancelled, the queue completes, or the stream breaks (throws).</summary>
    public async Task RunAsync(Stream stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var batch = new byte[BatchBytes];
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var used = 0;
            while (reader.TryPeek(out var next))
            {
                if (next.Length > batch.Length - used)
                {
                    if (used > 0)
                    {
                        break;
                    }

                    // Larger than a batch (a big directory): send it alone.
                    reader.TryRead(out _);
                    await stream.WriteAsync(next, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                reader.TryRead(out _);
                next.CopyTo(batch, used);
                used += next.Length;
            }

            if (used > 0)
            {
                await stream.WriteAsync(batch.AsMemory(0, used), cancellationToken).ConfigureAwait(false);
            }

            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops accepting frames; <see cref="RunAsync"/> returns once the queue is drained.</summary>
    public void Complete() => _queue.Writer.TryComplete();
}
