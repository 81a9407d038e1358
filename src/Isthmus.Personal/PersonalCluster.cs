using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Isthmus.Cluster;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Security;
using Isthmus.Personal.Proxy;
using Isthmus.Personal.Schedulers;
using Isthmus.Personal.Sites;
using Isthmus.Personal.Slurm;
using Isthmus.Personal.Spec;
using Isthmus.Personal.State;

namespace Isthmus.Personal;

/// <summary>
/// One personal cluster: <c>up</c>, <c>grow</c>, <c>shrink</c>, <c>down</c> and the elastic manager's reconcile
/// step, over its state directory. See docs/ARCHITECTURE.md, "Personal clusters", for what runs where.
/// </summary>
public sealed partial class PersonalCluster
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private PersonalCluster(PersonalClusterSpec spec, StateDirectory state, ClusterState record, string isthmus)
    {
        Spec = spec;
        State = state;
        Record = record;
        Isthmus = isthmus;
        Slurm = new PersonalSlurm(state, isthmus);
    }

    public PersonalClusterSpec Spec { get; }

    public StateDirectory State { get; }

    public ClusterState Record { get; }

    /// <summary>This machine's isthmus executable.</summary>
    public string Isthmus { get; }

    public PersonalSlurm Slurm { get; }

    public bool HasSlurm => Spec.Manager.Kind == ManagerKind.Slurm;

    private static string Self => Environment.ProcessPath ?? throw new UserException("cannot find the isthmus executable", 1);

    /// <summary>Opens a cluster that is up (for status, shell, grow, shrink, down).</summary>
    public static PersonalCluster Open(StateDirectory state)
    {
        var record = ClusterState.Load(state);
        var spec = PersonalClusterFileReader.Load(record.File);
        return new PersonalCluster(spec, state, record, Self);
    }

    /// <summary>Reloads state.json (another command may have changed it).</summary>
    public PersonalCluster Reload() => new(Spec, State, ClusterState.Load(State), Isthmus);

    public void Save() => Record.Save(State);

    /// <summary>The context of a site: how to reach it and where its Isthmus is.</summary>
    public SiteContext Site(string name)
    {
        var spec = Spec.FindSite(name) ?? throw new UserException($"no site '{name}' in {Spec.Path} (sites: {string.Join(", ", Spec.Sites.Select(s => s.Name))})");
        var record = Record.Site(name);
        var isthmus = spec.Access == AccessKind.Local ? Isthmus : Path.Combine(record.WorkDir, "bin", "isthmus");
        return new SiteContext(spec, record, SiteShell.For(spec), isthmus);
    }

    public IEnumerable<SiteContext> Sites => Record.Sites.Select(s => Site(s.Name));

    private static readonly LocalSiteShell Home = new() { Site = PersonalClusterSpec.HomeSite };

    // ---- up ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Brings the cluster up: the cluster directory, the submission host's router and login node, the personal
    /// Slurm controller, then every site in parallel (work directory, router, <c>min</c> proxies), and waits up
    /// to <paramref name="wait"/> for the proxies' nodes to join. A site that fails is reported and left out;
    /// a failure at the submission host stops everything it started.
    /// </summary>
    /// <returns>The cluster, and whether every site came up with all its nodes in time.</returns>
    public static async Task<(PersonalCluster Cluster, bool Complete)> UpAsync(PersonalClusterSpec spec, StateDirectory state, IClusterProgress progress,
        TimeSpan wait, CancellationToken cancellationToken)
    {
        if (state.Exists)
        {
            throw new UserException($"the personal cluster '{spec.Name}' is already up ({state.Path}): see 'isthmus status', or 'isthmus down' first");
        }

        if (spec.Manager.Kind == ManagerKind.Slurm && !PersonalSlurm.Installed())
        {
            throw new UserException($"{spec.Path}: [manager] kind = \"slurm\" needs slurmctld, slurmd, munged and mungekey on this machine's PATH (Debian: slurmctld slurmd slurm-client munge); install them or set kind = \"none\"");
        }

        if (Directory.Exists(state.Path) && Directory.EnumerateFileSystemEntries(state.Path).Any())
        {
            throw new UserException($"{state.Path} exists and is not empty, but holds no state.json: remove it or choose another --state");
        }

        SecureFile.CreatePrivateDirectory(Path.GetDirectoryName(state.Path)!);
        SecureFile.CreatePrivateDirectory(state.Path);
        var record = new ClusterState { Name = spec.Name, File = spec.Path, Created = DateTimeOffset.UtcNow };
        var cluster = new PersonalCluster(spec, state, record, Self);
        cluster.Save();
        try
        {
            cluster.CreateClusterDirectory();
            cluster.Save();
            await cluster.StartHomeAsync(progress, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            progress.Failed(PersonalClusterSpec.HomeSite, "the submission host did not come up; stopping what was started");
            await cluster.DownAsync(new SilentProgress(), cancellationToken).ConfigureAwait(false);
            throw;
        }

        var sites = await Task.WhenAll(cluster.Sites.Select(s => cluster.StartSiteAsync(s, progress, cancellationToken))).ConfigureAwait(false);
        cluster.Record.Processes.Add(await SiteProcesses.StartAsync(Home, "manager", state.Path, Path.Combine(state.LogDirectory, "manager.log"),
            new Dictionary<string, string>(), [cluster.Isthmus, "manage", "--state", state.Path], cancellationToken).ConfigureAwait(false));
        cluster.Save();
        var joined = await cluster.WaitForNodesAsync(progress, wait, cancellationToken).ConfigureAwait(false);
        return (cluster, sites.All(ok => ok) && joined);
    }

    private void CreateClusterDirectory()
    {
        var dir = State.ClusterDirectory;
        var created = ClusterCreator.New(dir, Spec.Network, Spec.Name, wanEncryption: Spec.WanEncryption);
        // Programs of a personal node see its name as their host name: Slurm, MPI and srun output use it.
        var file = created.LoadClusterFile();
        (file with { Cluster = file.Cluster with { NodeHostname = true } }).Save(created.ClusterFilePath);
        ClusterCreator.AddSite(dir, PersonalClusterSpec.HomeSite, Resolve(Spec.Submit.Wan), Resolve(Spec.Submit.Lan));
        foreach (var site in Spec.Sites)
        {
            var added = ClusterCreator.AddSite(dir, site.Name, Resolve(site.Wan), Resolve(site.Lan));
            var work = site.Access == AccessKind.Local ? site.WorkDir ?? State.LocalSiteDirectory(site.Name) : site.WorkDir ?? SiteInstaller.DefaultRemoteWorkDir(Spec.Name);
            Record.Sites.Add(new SiteRecord { Name = site.Name, WorkDir = work, Wan = added.Wan.ToString(), Lan = added.Lan.ToString() });
        }
    }

    private async Task StartHomeAsync(IClusterProgress progress, CancellationToken cancellationToken)
    {
        const string home = PersonalClusterSpec.HomeSite;
        Directory.CreateDirectory(State.LogDirectory);
        Directory.CreateDirectory(State.RuntimeDirectory);
        var env = new Dictionary<string, string> { ["ISTHMUS_RUNTIME_DIR"] = State.RuntimeDirectory };
        var router = await StartAtHomeAsync("router", [Isthmus, "router", State.ClusterDirectory, "--site", home], env, cancellationToken).ConfigureAwait(false);
        await WaitForLogAsync(Home, router, l => l.Contains("up:", StringComparison.Ordinal), StartTimeout, cancellationToken).ConfigureAwait(false);
        progress.Report(home, "router", "up");

        var node = await StartAtHomeAsync("node", [Isthmus, "node", State.ClusterDirectory, "--site", home, "--name", PersonalClusterSpec.LoginNode], env, cancellationToken).ConfigureAwait(false);
        var line = await WaitForLogAsync(Home, node, l => l.StartsWith(PersonalClusterSpec.LoginNode + " ", StringComparison.Ordinal) && !l.Contains(':', StringComparison.Ordinal), StartTimeout, cancellationToken).ConfigureAwait(false);
        Record.LoginVip = line.Split(' ')[1].Trim();
        Save();
        progress.Report(home, "nodes", $"{PersonalClusterSpec.LoginNode} {Record.LoginVip}");

        if (!HasSlurm)
        {
            return;
        }

        Record.MungeDirectory = Path.Combine(Path.GetTempPath(), "isthmus-munge-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)));
        Slurm.NewMungeDirectory = Record.MungeDirectory;
        Record.CtldPort = FreePort(IPAddress.Any);
        Record.SlurmdPort = FreePort(IPAddress.Loopback);
        Save();
        await Slurm.PrepareAsync(Spec.Name, Record.LoginVip, Record.CtldPort, Record.SlurmdPort, cancellationToken).ConfigureAwait(false);
        var munged = await StartAtHomeAsync("munged", Slurm.MungedCommand(), env, cancellationToken).ConfigureAwait(false);
        var deadline = DateTime.UtcNow + StartTimeout;
        while (!File.Exists(Slurm.MungeSocket))
        {
            await ThrowIfDeadAsync(Home, munged, deadline, cancellationToken).ConfigureAwait(false);
        }

        var ctld = await StartAtHomeAsync("slurmctld", Slurm.CtldCommand(), env, cancellationToken).ConfigureAwait(false);
        while (!await Slurm.PingAsync(cancellationToken).ConfigureAwait(false))
        {
            await ThrowIfDeadAsync(Home, ctld, deadline, cancellationToken).ConfigureAwait(false);
        }

        progress.Report(home, "slurm", $"slurmctld up at {PersonalClusterSpec.LoginNode} ({Record.LoginVip}:{Record.CtldPort})");
    }

    private async Task<ProcessRecord> StartAtHomeAsync(string role, IReadOnlyList<string> argv, Dictionary<string, string> env, CancellationToken cancellationToken)
    {
        var started = await SiteProcesses.StartAsync(Home, role, State.Path, Path.Combine(State.LogDirectory, role + ".log"), env, argv, cancellationToken).ConfigureAwait(false);
        Record.Processes.Add(started);
        Save();
        return started;
    }

    /// <summary>Prepares a site, starts its router and submits its minimum of proxies; false (reported) if it failed.</summary>
    private async Task<bool> StartSiteAsync(SiteContext site, IClusterProgress progress, CancellationToken cancellationToken)
    {
        var touched = false;
        try
        {
            if (site.Spec.Access == AccessKind.Ssh)
            {
                progress.Report(site.Name, "router", $"reaching {site.Shell.Describe}");
                site.Record.WorkDir = await SiteInstaller.ResolveWorkDirAsync(site.Shell, site.WorkDir, cancellationToken).ConfigureAwait(false);
                touched = true;
                site = Site(site.Name);
                if (await SiteInstaller.InstallBuildAsync(site.Shell, site.WorkDir, cancellationToken).ConfigureAwait(false))
                {
                    progress.Report(site.Name, "router", $"copied Isthmus {SiteInstaller.Build[..12]} to {site.WorkDir}/bin");
                }

                await SiteInstaller.InstallClusterAsync(site.Shell, new ClusterDirectory(State.ClusterDirectory), site.Name,
                    HasSlurm ? Slurm.MungeKey : null, site.WorkDir, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                touched = true;
                SecureFile.CreatePrivateDirectory(Path.GetDirectoryName(site.WorkDir)!);
                SecureFile.CreatePrivateDirectory(site.WorkDir);
            }

            var clusterDir = site.Spec.Access == AccessKind.Local ? State.ClusterDirectory : Path.Combine(site.WorkDir, "cluster");
            var config = new ProxyConfig
            {
                ClusterDirectory = clusterDir,
                Site = site.Name,
                Manager = HasSlurm ? "slurm" : "none",
                ClusterName = Spec.Name,
                CtldName = PersonalClusterSpec.LoginNode,
                CtldVip = Record.LoginVip,
                CtldPort = Record.CtldPort,
                SlurmdPort = Record.SlurmdPort,
                Cpus = Spec.Manager.Cpus,
                MungeKey = !HasSlurm ? null : site.Spec.Access == AccessKind.Local ? Slurm.MungeKey : Path.Combine(site.WorkDir, "munge.key"),
            };
            await site.Shell.CheckAsync("writing proxy.json", $"cat > {SiteShell.Quote(ProxyConfig.PathIn(site.WorkDir))} <<'ISTHMUS_EOF'\n{config.ToJson()}\nISTHMUS_EOF\n",
                cancellationToken: cancellationToken).ConfigureAwait(false);

            await StartRouterAsync(site, cancellationToken).ConfigureAwait(false);
            progress.Report(site.Name, "router", $"up (wan {site.Record.Wan}, lan {site.Record.Lan})");
            for (var i = 0; i < site.Spec.MinProxies; i++)
            {
                await SubmitAsync(site.Name, progress, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }
        catch (UserException e)
        {
            progress.Failed(site.Name, e.Message);
            // A work directory made by a call whose answer was lost counts as untouched: down would then leave
            // an empty directory at the site, which is better than a down that cannot finish without it.
            await UpdateAsync(r =>
            {
                r.AddEvent($"site {site.Name}: {e.Message}");
                r.Site(site.Name).Failed = e.Message;
                r.Site(site.Name).Untouched = !touched;
            }, cancellationToken).ConfigureAwait(false);
            return false;
        }
    }

    /// <summary>Starts the site's router (in the background at its head node), records it, and waits until it listens.</summary>
    private async Task StartRouterAsync(SiteContext site, CancellationToken cancellationToken)
    {
        var clusterDir = site.Spec.Access == AccessKind.Local ? State.ClusterDirectory : Path.Combine(site.WorkDir, "cluster");
        var router = await SiteProcesses.StartAsync(site.Shell, "router", site.WorkDir, Path.Combine(site.WorkDir, "logs", "router.log"),
            new Dictionary<string, string>(), [site.Isthmus, "router", clusterDir, "--site", site.Name], cancellationToken).ConfigureAwait(false);
        await UpdateAsync(r => r.Site(site.Name).Router = router, cancellationToken).ConfigureAwait(false);
        await WaitForLogAsync(site.Shell, router, l => l.Contains("up:", StringComparison.Ordinal), StartTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Submits one proxy at <paramref name="siteName"/> (the next node name of the site) and records it.</summary>
    public async Task<ProxyRecord> SubmitAsync(string siteName, IClusterProgress progress, CancellationToken cancellationToken)
    {
        string node = "";
        await UpdateAsync(r =>
        {
            var s = r.Site(siteName);
            node = siteName + s.NextIndex.ToString(CultureInfo.InvariantCulture);
            s.NextIndex++;
        }, cancellationToken).ConfigureAwait(false);
        var site = Site(siteName);
        var proxy = await site.Scheduler.SubmitAsync(site, node, cancellationToken).ConfigureAwait(false);
        await UpdateAsync(r => r.Proxies.Add(proxy), cancellationToken).ConfigureAwait(false);
        progress.Report(siteName, "proxies", $"{node}: job {proxy.JobId} submitted ({site.Spec.Scheduler.ToString().ToLowerInvariant()})");
        return proxy;
    }

    /// <summary>Waits until every proxy's node has joined (and, with Slurm, registered), or <paramref name="wait"/> passed.</summary>
    public async Task<bool> WaitForNodesAsync(IClusterProgress progress, TimeSpan wait, CancellationToken cancellationToken, IEnumerable<string>? known = null)
    {
        var deadline = DateTime.UtcNow + wait;
        var reported = new HashSet<string>(known ?? [], StringComparer.Ordinal);
        while (true)
        {
            var status = await ClusterStatusReader.ReadAsync(Reload(), cancellationToken).ConfigureAwait(false);
            var all = true;
            foreach (var site in status.Sites)
            {
                foreach (var p in site.Proxies)
                {
                    var ready = p.Vip is not null && (!HasSlurm || p.SlurmState is "idle" or "alloc" or "mix");
                    if (ready && reported.Add(p.Node))
                    {
                        progress.Report(site.Name, "nodes", $"{p.Node} {p.Vip}{(HasSlurm ? " (slurm: " + p.SlurmState + ")" : "")}");
                    }

                    all &= ready || p.State == "gone";
                }
            }

            if (all)
            {
                return true;
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(500, cancellationToken).ConfigureAwait(false);
        }
    }

    // ---- shared helpers ---------------------------------------------------------------------------------

    /// <summary>Applies <paramref name="change"/> to state.json under the lock and keeps <see cref="Record"/> in step.</summary>
    public async Task UpdateAsync(Action<ClusterState> change, CancellationToken cancellationToken)
    {
        using var held = await StateLock.AcquireAsync(State, TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        var fresh = File.Exists(State.StateFile) ? ClusterState.Load(State) : Record;
        change(fresh);
        fresh.Save(State);
        Record.Processes = fresh.Processes;
        Record.Sites = fresh.Sites;
        Record.Proxies = fresh.Proxies;
        Record.Events = fresh.Events;
        Record.LoginVip = fresh.LoginVip;
        Record.MungeDirectory = fresh.MungeDirectory;
        Record.CtldPort = fresh.CtldPort;
        Record.SlurmdPort = fresh.SlurmdPort;
    }

    private static async Task<string> WaitForLogAsync(SiteShell shell, ProcessRecord process, Func<string, bool> match, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var log = await shell.RunAsync($"cat {SiteShell.Quote(process.Log!)} 2>/dev/null", cancellationToken: cancellationToken).ConfigureAwait(false);
            if (log.StandardOutput.Split('\n').FirstOrDefault(match) is { } line)
            {
                return line;
            }

            await ThrowIfDeadAsync(shell, process, deadline, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task ThrowIfDeadAsync(SiteShell shell, ProcessRecord process, DateTime deadline, CancellationToken cancellationToken)
    {
        var alive = await SiteProcesses.AliveAsync(shell, [(process.Pid, process.StartTicks)], cancellationToken).ConfigureAwait(false);
        if (alive.Count == 0 || DateTime.UtcNow > deadline)
        {
            var tail = await shell.RunAsync($"tail -n 3 {SiteShell.Quote(process.Log!)} 2>/dev/null", cancellationToken: cancellationToken).ConfigureAwait(false);
            var why = alive.Count == 0 ? "exited" : "did not get ready in time";
            throw new UserException($"site {shell.Site}: {process.Role} {why}: {tail.StandardOutput.Trim().ReplaceLineEndings(" | ")} (log: {process.Log})", 1);
        }

        await Task.Delay(200, cancellationToken).ConfigureAwait(false);
    }

    private static HostPort Resolve(Endpoint endpoint) => new(endpoint.Host, endpoint.Port ?? FreePort(IPAddress.Parse(endpoint.Host)));

    private static int FreePort(IPAddress address)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private sealed class SilentProgress : IClusterProgress
    {
        public void Report(string site, string part, string text)
        {
        }

        public void Failed(string site, string reason)
        {
        }
    }
}
