using System.Collections.Concurrent;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// The streams an accepting router holds for resumes, by stream id, and the last seen instance id (epoch)
/// of every peer router: a peer that restarted cannot resume its old streams, so they end at once.
/// </summary>
public sealed class ResumableStreams(ResumableOptions options)
{
    private readonly ConcurrentDictionary<Guid, Entry> _streams = new();
    private readonly ConcurrentDictionary<string, ulong> _epochs = new(StringComparer.Ordinal);

    public ResumableOptions Options { get; } = options;

    public BufferBudget Budget { get; } = new(options.BufferBudget);

    public int Count => _streams.Count;

    /// <summary>Registers an accepted stream from <paramref name="site"/>'s router instance <paramref name="epoch"/>.</summary>
    public void Add(ResumableSession session, string site, ulong epoch)
    {
        PeerEpoch(site, epoch);
        _streams[session.StreamId] = new Entry(session, site, epoch);
    }

    public void Remove(ResumableSession session)
    {
        if (_streams.TryGetValue(session.StreamId, out var entry) && entry.Session == session)
        {
            _streams.TryRemove(new KeyValuePair<Guid, Entry>(session.StreamId, entry));
        }
    }

    /// <summary>The stream <paramref name="id"/> if <paramref name="site"/> opened it; null otherwise.</summary>
    public ResumableSession? Find(Guid id, string site) =>
        _streams.TryGetValue(id, out var entry) && entry.Site == site ? entry.Session : null;

    /// <summary>A leg or link from <paramref name="site"/>'s router carried <paramref name="epoch"/>: a new one ends the streams of the old.</summary>
    public void PeerEpoch(string site, ulong epoch)
    {
        if (epoch == 0)
        {
            return;
        }

        var previous = _epochs.GetOrAdd(site, epoch);
        if (previous == epoch || !_epochs.TryUpdate(site, epoch, previous))
        {
            return;
        }

        foreach (var entry in _streams.Values)
        {
            if (entry.Site == site && entry.Epoch != epoch)
            {
                entry.Session.EndPeerLost();
            }
        }
    }

    private sealed record Entry(ResumableSession Session, string Site, ulong Epoch);
}
