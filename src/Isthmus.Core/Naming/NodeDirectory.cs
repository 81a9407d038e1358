using System.Collections.Frozen;

namespace Isthmus.Core.Naming;

/// <summary>
/// An immutable snapshot of every node name in the cluster, answering forward and reverse lookups.
/// Names are <c>NODE.SITE.CLUSTER</c> (canonical) and the short <c>NODE</c>; a short name that exists at
/// several sites means the asker's own site first, then the other sites in cluster-file order, so that
/// every site can have its own "n1" and still reach the others by full name. Lookups ignore case and a
/// trailing dot, as DNS does.
/// </summary>
public sealed class NodeDirectory
{
    private readonly FrozenDictionary<string, DirectoryEntry> _byCanonical;
    private readonly FrozenDictionary<string, DirectoryEntry[]> _byShort;
    private readonly FrozenDictionary<uint, DirectoryEntry> _byVip;
    private readonly string[] _siteOrder;

    /// <param name="cluster">The cluster name (the last label of every canonical name).</param>
    /// <param name="siteOrder">Site names in cluster-file order (decides which of several short-name matches wins).</param>
    /// <param name="entries">Every node; a later entry for the same VIP replaces an earlier one.</param>
    public NodeDirectory(string cluster, IEnumerable<string> siteOrder, IEnumerable<DirectoryEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Cluster = cluster;
        _siteOrder = [.. siteOrder];
        var byVip = new Dictionary<uint, DirectoryEntry>();
        foreach (var entry in entries)
        {
            byVip[entry.Vip] = entry;
        }

        Entries = [.. byVip.Values.OrderBy(e => SiteRank(e.Site)).ThenBy(e => e.Name, StringComparer.Ordinal)];
        _byVip = byVip.ToFrozenDictionary();
        _byCanonical = Entries
            .GroupBy(e => e.CanonicalName(cluster), StringComparer.OrdinalIgnoreCase)
            .ToFrozenDictionary(g => g.Key, g => g.First(), StringComparer.OrdinalIgnoreCase);
        _byShort = Entries
            .GroupBy(e => e.Name, StringComparer.OrdinalIgnoreCase)
            .ToFrozenDictionary(g => g.Key, g => g.ToArray(), StringComparer.OrdinalIgnoreCase);
    }

    public static NodeDirectory Empty(string cluster) => new(cluster, [], []);

    public string Cluster { get; }

    /// <summary>Every node, by site (cluster-file order), then name.</summary>
    public IReadOnlyList<DirectoryEntry> Entries { get; }

    public int Count => Entries.Count;

    /// <summary>Resolves a canonical or short name as seen from <paramref name="askerSite"/>.</summary>
    public bool TryResolve(string name, string? askerSite, out DirectoryEntry entry)
    {
        ArgumentNullException.ThrowIfNull(name);
        entry = null!;
        var key = name.EndsWith('.') ? name[..^1] : name;
        if (key.Length == 0)
        {
            return false;
        }

        if (key.Contains('.', StringComparison.Ordinal))
        {
            return _byCanonical.TryGetValue(key, out entry!);
        }

        if (!_byShort.TryGetValue(key, out var matches))
        {
            return false;
        }

        entry = matches.FirstOrDefault(e => e.Site == askerSite) ?? matches[0];
        return true;
    }

    /// <summary>The node holding <paramref name="vip"/> (host order).</summary>
    public bool TryReverse(uint vip, out DirectoryEntry entry) => _byVip.TryGetValue(vip, out entry!);

    private int SiteRank(string site)
    {
        var i = Array.IndexOf(_siteOrder, site);
        return i < 0 ? int.MaxValue : i;
    }
}
