using Isthmus.Core.Naming;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// The cluster's node names as this router knows them: its own site's bindings (from the registry) and
/// every peer site's, as their routers last announced them over peer links. Nodes get a new snapshot
/// pushed whenever it changes; a name bound at any site resolves everywhere within one push.
/// </summary>
internal sealed class RouterDirectory
{
    private readonly object _lock = new();
    private readonly RouterContext _context;
    private readonly ILogger _logger;
    private readonly Dictionary<string, IReadOnlyList<DirectoryEntry>> _remote = new(StringComparer.Ordinal);
    private NodeDirectory _snapshot;

    public RouterDirectory(RouterContext context, ILogger logger)
    {
        _context = context;
        _logger = logger;
        _snapshot = Build();
        context.Registry.BindingsChanged += () =>
        {
            Rebuild();
            LocalChanged?.Invoke();
        };
    }

    /// <summary>Raised after the snapshot changed (local or remote); handlers must not block.</summary>
    public event Action? Changed;

    /// <summary>Raised after this site's own bindings changed, for the peer links to announce.</summary>
    public event Action? LocalChanged;

    public NodeDirectory Snapshot
    {
        get
        {
            lock (_lock)
            {
                return _snapshot;
            }
        }
    }

    /// <summary>This site's entries, as announced to peer routers.</summary>
    public IReadOnlyList<DirectoryEntry> LocalEntries() =>
        [.. _context.Registry.Bindings().Select(b => new DirectoryEntry(b.Name, _context.Site.Name, b.Vip))];

    /// <summary>Replaces a peer site's entries with what its router announced; entries outside its subnet are dropped.</summary>
    public void UpdateSite(string site, IReadOnlyList<DirectoryEntry> entries)
    {
        var settings = _context.Cluster.FindSite(site);
        if (settings is null)
        {
            return;
        }

        var valid = entries.Where(e => e.Site == site && settings.Subnet.Contains(e.Vip)).ToList();
        if (valid.Count != entries.Count)
        {
            _logger.LogWarning("Directory from site {Site}: ignored {Count} entries outside its subnet {Subnet}", site, entries.Count - valid.Count, settings.Subnet);
        }

        lock (_lock)
        {
            _remote[site] = valid;
        }

        Rebuild();
    }

    private void Rebuild()
    {
        var next = Build();
        lock (_lock)
        {
            _snapshot = next;
        }

        Changed?.Invoke();
    }

    private NodeDirectory Build()
    {
        List<DirectoryEntry> all = [.. LocalEntries()];
        lock (_lock)
        {
            foreach (var entries in _remote.Values)
            {
                all.AddRange(entries);
            }
        }

        return new NodeDirectory(_context.Cluster.Cluster.Name, _context.Cluster.Sites.Select(s => s.Name), all);
    }
}
