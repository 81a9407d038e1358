namespace Isthmus.Core.Relay.Resumable;

/// <summary>Bytes of replay buffers held by all streams of one router, against one limit.</summary>
public sealed class BufferBudget(long limit)
{
    private long _held;

    public long Limit { get; } = limit;

    public long Held => Interlocked.Read(ref _held);

    public bool Exhausted => Held >= Limit;

    public void Add(long bytes) => Interlocked.Add(ref _held, bytes);
}
