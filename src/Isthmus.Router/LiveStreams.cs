using System.Collections.Concurrent;
using Isthmus.Core.Relay;

namespace Isthmus.Router;

/// <summary>
/// The streams this router relays now, by source and destination VIP, so that a domain change or a revocation
/// can end the ones it forbids. Registration is one dictionary insert per stream; ending is a reset of both legs
/// (the relay then ends as for any reset, and each program sees ECONNRESET).
/// </summary>
internal sealed class LiveStreams
{
    private readonly ConcurrentDictionary<long, LiveStream> _streams = new();
    private long _next;

    public int Count => _streams.Count;

    /// <summary>Registers a relayed stream until the returned handle is disposed.</summary>
    public IDisposable Register(Guid streamId, uint source, uint destination, RelayEndpoint inbound, RelayEndpoint outbound)
    {
        var id = Interlocked.Increment(ref _next);
        var stream = new LiveStream(streamId, source, destination, inbound, outbound);
        _streams[id] = stream;
        return new Registration(this, id);
    }

    /// <summary>Resets every stream for which <paramref name="forbidden"/> is true; returns them (for the log).</summary>
    public IReadOnlyList<LiveStream> EndWhere(Func<uint, uint, bool> forbidden)
    {
        var ended = new List<LiveStream>();
        foreach (var (id, stream) in _streams)
        {
            if (forbidden(stream.Source, stream.Destination) && _streams.TryRemove(id, out _))
            {
                stream.Inbound.Abort();
                stream.Outbound.Abort();
                ended.Add(stream);
            }
        }

        return ended;
    }

    internal sealed record LiveStream(Guid StreamId, uint Source, uint Destination, RelayEndpoint Inbound, RelayEndpoint Outbound);

    private sealed class Registration(LiveStreams owner, long id) : IDisposable
    {
        public void Dispose() => owner._streams.TryRemove(id, out _);
    }
}
