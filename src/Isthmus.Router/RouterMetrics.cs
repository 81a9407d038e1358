namespace Isthmus.Router;

/// <summary>Counters a person or Prometheus reads to see what the router does.</summary>
public sealed class RouterMetrics
{
    private long _streamsOpened;
    private long _streamsFailed;
    private long _bytesRelayed;
    private long _legsRefused;

    public long StreamsOpened => Interlocked.Read(ref _streamsOpened);

    public long StreamsFailed => Interlocked.Read(ref _streamsFailed);

    public long BytesRelayed => Interlocked.Read(ref _bytesRelayed);

    public long LegsRefused => Interlocked.Read(ref _legsRefused);

    public void StreamOpened() => Interlocked.Increment(ref _streamsOpened);

    public void StreamFailed() => Interlocked.Increment(ref _streamsFailed);

    public void LegRefused() => Interlocked.Increment(ref _legsRefused);

    public void Relayed(long bytes) => Interlocked.Add(ref _bytesRelayed, bytes);
}
