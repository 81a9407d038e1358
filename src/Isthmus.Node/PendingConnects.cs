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
    private static readonly TimeSpan RecentLifetime = TimeSpan.FromMinutes(10);
    private const int MaxRecent = 100_000;
    private readonly ConcurrentDictionary<(uint Address, ushort Port), VirtualEndpoint> _open = new();
    private readonly ConcurrentDictionary<(uint Address, ushort Port), (VirtualEndpoint Destination, long ClosedMs)> _recent = new();
    private long _nextPruneMs;

    public void Add((uint, ushort) source, PendingConnect connect)
    {
        if (_pending.TryRemove(source, out var stale))
        {
            // The program retried connect on the same socket (e.g. after EINTR): the old leg is useless.
            stale.Discard();
        }

        _recent.TryRemove(source, out _);
        _pending[source] = connect;
        _ = ExpireAsync(source, connect);
    }

    /// <summary>
    /// Takes the announced connect for a program connection that just arrived and marks it open first, so
    /// that a getpeername racing with us always finds it in one of the two tables.
    /// </summary>
    public bool TryTake((uint, ushort) source, out PendingConnect connect)
    {
        if (!_pending.TryGetValue(source, out connect!))
        {
            return false;
        }

        _open[source] = connect.Destination;
        return _pending.TryRemove(new KeyValuePair<(uint, ushort), PendingConnect>(source, connect));
    }

    /// <summary>
    /// The relay ended, but the program's socket may live on (CLOSE_WAIT) and still ask getpeername; keep
    /// the answer for a while. A later connect from the same source replaces it.
    /// </summary>
    public void MarkClosed((uint, ushort) source)
    {
        if (_open.TryRemove(source, out var destination))
        {
            _recent[source] = (destination, Environment.TickCount64);
            PruneRecent();
        }
    }

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

        if (_recent.TryGetValue(source, out var recent))
        {
            destination = recent.Destination;
            return true;
        }

        return false;
    }

    private void PruneRecent()
    {
        var now = Environment.TickCount64;
        if (now < Interlocked.Read(ref _nextPruneMs) && _recent.Count < MaxRecent)
        {
            return;
        }

        Interlocked.Exchange(ref _nextPruneMs, now + 30_000);
        var horizon = now - (long)RecentLifetime.TotalMilliseconds;
        foreach (var entry in _recent)
        {
            if (entry.Value.ClosedMs < horizon || _recent.Count > MaxRecent)
            {
                _recent.TryRemove(entry.Key, out _);
            }
        }
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
