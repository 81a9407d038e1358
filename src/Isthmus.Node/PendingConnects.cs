using System.Collections.Concurrent;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;

namespace Isthmus.Node;

/// <summary>
/// Connects the shim announced, keyed by the program socket's local (image) address, waiting for the
/// program's loopback connection; and open streams, kept so getpeername can learn the virtual peer.
/// </summary>
internal sealed class PendingConnects
{
    private static readonly TimeSpan Expiry = TimeSpan.FromSeconds(60);
    private readonly ConcurrentDictionary<(uint Address, ushort Port), PendingConnect> _pending = new();
    private readonly ConcurrentDictionary<(uint Address, ushort Port), VirtualEndpoint> _open = new();

    public void Add((uint, ushort) source, PendingConnect connect)
    {
        if (_pending.TryRemove(source, out var stale))
        {
            // The program retried connect on the same socket (e.g. after EINTR): the old leg is useless.
            stale.Discard();
        }

        _pending[source] = connect;
        _ = ExpireAsync(source, connect);
    }

    public bool TryTake((uint, ushort) source, out PendingConnect connect) => _pending.TryRemove(source, out connect!);

    public void MarkOpen((uint, ushort) source, VirtualEndpoint destination) => _open[source] = destination;

    public void MarkClosed((uint, ushort) source) => _open.TryRemove(source, out _);

    public bool TryGetPeer((uint, ushort) source, out VirtualEndpoint destination)
    {
        if (_open.TryGetValue(source, out destination))
        {
            return true;
        }

        if (_pending.TryGetValue(source, out var pending))
        {
            destination = pending.Destination;
            return true;
        }

        return false;
    }

    private async Task ExpireAsync((uint, ushort) source, PendingConnect connect)
    {
        await Task.Delay(Expiry).ConfigureAwait(false);
        if (_pending.TryGetValue(source, out var current) && ReferenceEquals(current, connect) && _pending.TryRemove(source, out _))
        {
            connect.Discard();
        }
    }
}

/// <summary>A leg being dialled (or dialled) for a connect whose program socket has not arrived yet.</summary>
internal sealed class PendingConnect(VirtualEndpoint destination, Guid streamId, Task<LegDialResult> dial)
{
    public VirtualEndpoint Destination { get; } = destination;

    public Guid StreamId { get; } = streamId;

    public Task<LegDialResult> Dial { get; } = dial;

    public void Discard() => _ = Dial.ContinueWith(t => t.Result.Endpoint?.Abort(), TaskScheduler.Default);
}
