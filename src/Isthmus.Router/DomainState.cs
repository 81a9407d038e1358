using Isthmus.Core;
using Isthmus.Core.Domains;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// This router's copy of the cluster's domain table. It starts from <c>DIR/state/SITE/domains.json</c> if a
/// run-time change was ever made (that file then wins over the cluster file's <c>[domains]</c>), else from the
/// cluster file. It changes by an admin request (a new version) or by adopting a newer table from a peer; every
/// change is persisted before anyone is told, then <see cref="Changed"/> runs (in version order, under the lock:
/// handlers only queue work).
/// </summary>
internal sealed class DomainState
{
    private readonly object _lock = new();
    private readonly string _path;
    private readonly ILogger _logger;
    private DomainTable _current;

    public DomainState(string stateDirectory, DomainTable fromClusterFile, ILogger logger)
    {
        _logger = logger;
        Directory.CreateDirectory(stateDirectory);
        _path = Path.Combine(stateDirectory, "domains.json");
        _current = fromClusterFile;
        if (Load(_path) is { } saved)
        {
            if (saved.Supersedes(fromClusterFile) || saved.Digest == fromClusterFile.Digest)
            {
                _current = saved;
                if (saved.Version > 0)
                {
                    logger.LogInformation("Domain table version {Version} from {Path} (it wins over the cluster file's [domains])", saved.Version, _path);
                }
            }
        }
    }

    /// <summary>Called with (previous, current) after every change, while the state is locked; must not block.</summary>
    public event Action<DomainTable, DomainTable>? Changed;

    /// <summary>Called on every table about to be adopted, to add what only this router knows (its revoked bindings' keys).</summary>
    public Func<DomainTable, DomainTable>? Augment { get; set; }

    public DomainTable Current => Volatile.Read(ref _current);

    /// <summary>Applies a change made here (an admin request): the result is version current+1. Throws <see cref="DomainChangeException"/>.</summary>
    public DomainTable Apply(Func<DomainTable, DomainTable> change, string why)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_lock)
        {
            var next = change(_current);
            Adopt(next, why);
            return _current;
        }
    }

    /// <summary>Adopts <paramref name="table"/> if it supersedes ours (from a peer router); false if ours is as new.</summary>
    public bool TryAdopt(DomainTable table, string from)
    {
        lock (_lock)
        {
            if (!table.Supersedes(_current))
            {
                return false;
            }

            Adopt(table, from);
            return true;
        }
    }

    private void Adopt(DomainTable next, string why)
    {
        if (Augment is { } augment)
        {
            next = augment(next);
        }

        Save(next);
        var previous = _current;
        Volatile.Write(ref _current, next);
        _logger.LogInformation("Domain table version {Version} ({Why}): {Domains}{Revoked}", next.Version, why, Describe(next),
            next.Revoked.Count == 0 ? "" : "; revoked: " + string.Join(", ", next.Revoked));
        Changed?.Invoke(previous, next);
    }

    public static string Describe(DomainTable table) =>
        table.Names.Count == 0 ? "no domains" : string.Join("; ", table.Names.Select(n => $"{n} = [{string.Join(", ", table.MembersOf(n))}]"));

    private void Save(DomainTable table)
    {
        try
        {
            SecureFile.WriteAtomic(_path, DomainTableCodec.EncodeText(table), secret: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The table still applies in memory; peers hold it too and give it back after a restart.
            _logger.LogError("Cannot persist the domain table to {Path}: {Error}", _path, e.Message);
        }
    }

    private static DomainTable? Load(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return DomainTableCodec.Decode(File.ReadAllBytes(path));
        }
        catch (ProtocolException e)
        {
            throw new UserException($"{path} is damaged ({e.Message}); remove it to start from the cluster file's [domains] (peer routers then send theirs)", e, 1);
        }
    }
}
