using Isthmus.Core;

namespace Isthmus.Personal.State;

/// <summary>
/// Where a personal cluster keeps what <c>status</c>, <c>shell</c>, <c>grow</c>, <c>shrink</c> and <c>down</c>
/// need from another shell: by default <c>$XDG_STATE_HOME/isthmus/NAME</c> (<c>~/.local/state/isthmus/NAME</c>).
/// <code>
/// STATE/state.json      processes at the submission host, sites, job proxies (see <see cref="ClusterState"/>)
/// STATE/lock            held (flock) while a command changes state.json
/// STATE/cluster/        the Isthmus cluster directory (CA, secrets, route table)
/// STATE/run/            the runtime directory of the submission host's node agent
/// STATE/slurm/          the personal Slurm controller: slurm.conf, munge key and socket, state, logs
/// STATE/logs/           one log per process started at the submission host
/// STATE/sites/SITE/     a local site's work directory (remote sites have theirs at the head node)
/// </code>
/// </summary>
public sealed class StateDirectory
{
    public StateDirectory(string path) => Path = System.IO.Path.GetFullPath(path);

    public string Path { get; }

    public string StateFile => Combine("state.json");

    public string LockFile => Combine("lock");

    public string ClusterDirectory => Combine("cluster");

    public string RuntimeDirectory => Combine("run");

    public string SlurmDirectory => Combine("slurm");

    public string LogDirectory => Combine("logs");

    public string LocalSiteDirectory(string site) => System.IO.Path.Combine(Path, "sites", site);

    public bool Exists => File.Exists(StateFile);

    /// <summary>Where clusters live by default: <c>$XDG_STATE_HOME/isthmus</c>, else <c>~/.local/state/isthmus</c>.</summary>
    public static string DefaultRoot()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return System.IO.Path.Combine(string.IsNullOrEmpty(xdg) ? System.IO.Path.Combine(home, ".local", "state") : xdg, "isthmus");
    }

    /// <summary>
    /// The state directory a command that takes no cluster file means: <paramref name="explicitPath"/>, else
    /// <c>$ISTHMUS_STATE</c>, else the only cluster under <see cref="DefaultRoot"/>.
    /// </summary>
    public static StateDirectory Find(string? explicitPath)
    {
        var path = explicitPath ?? Environment.GetEnvironmentVariable("ISTHMUS_STATE");
        if (!string.IsNullOrEmpty(path))
        {
            var dir = new StateDirectory(path);
            return dir.Exists ? dir : throw new UserException($"no personal cluster in {dir.Path} (no state.json): bring one up with 'isthmus up FILE.toml'");
        }

        var root = DefaultRoot();
        var found = Directory.Exists(root)
            ? Directory.GetDirectories(root).Where(d => File.Exists(System.IO.Path.Combine(d, "state.json"))).Order(StringComparer.Ordinal).ToList()
            : [];
        return found.Count switch
        {
            0 => throw new UserException($"no personal cluster is up (nothing in {root}): bring one up with 'isthmus up FILE.toml'", 1),
            1 => new StateDirectory(found[0]),
            _ => throw new UserException($"several personal clusters are up ({string.Join(", ", found.Select(System.IO.Path.GetFileName))}): choose one with --state {root}/NAME"),
        };
    }

    private string Combine(string name) => System.IO.Path.Combine(Path, name);
}
