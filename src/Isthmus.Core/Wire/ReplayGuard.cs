using System.Collections.Concurrent;

namespace Isthmus.Core.Wire;

/// <summary>
/// Refuses a leg header whose stream id was already seen inside the freshness window, so a captured
/// cleartext header cannot be replayed to open a second relay.
/// </summary>
public sealed class ReplayGuard
{
    private readonly ConcurrentDictionary<Guid, long> _seen = new();
    private readonly TimeProvider _time;
    private long _nextPruneMs;

    public ReplayGuard(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <summary>True the first time a stream id is offered (within the window), false for a replay.</summary>
    public bool TryAccept(Guid streamId)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (now >= Interlocked.Read(ref _nextPruneMs))
        {
            Prune(now);
        }

        return _seen.TryAdd(streamId, now);
    }

    private void Prune(long now)
    {
        Interlocked.Exchange(ref _nextPruneMs, now + 10_000);
        var horizon = now - (2 * (long)LegHeader.FreshnessWindow.TotalMilliseconds);
        foreach (var entry in _seen)
        {
            if (entry.Value < horizon)
            {
                _seen.TryRemove(entry.Key, out _);
            }
        }
    }
}
