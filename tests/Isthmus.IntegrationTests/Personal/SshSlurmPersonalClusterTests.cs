using System.Globalization;
using Isthmus.IntegrationTests.Hpc;
using Isthmus.IntegrationTests.Overlay;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Personal;

/// <summary>
/// The acceptance test of issue 7. Two sites, each with a real Slurm of its own (slurmctld on the head node,
/// slurmd on its two compute nodes, over the site LAN) and sshd on its head node; the submission host is a
/// third namespace (site "s", a gateway without nodes) that reaches only the head nodes, over the WAN.
/// <c>isthmus up</c> reaches both sites over ssh, copies Isthmus there, starts their routers and submits one
/// job proxy per site with sbatch; the proxies' nodes join a personal Slurm whose controller runs at the
/// submission host. Then srun across both, an sbatch job running Open MPI NetPIPE across both, grow/shrink, scancel of a proxy at its site, and down, which must
/// leave no site job, process or file behind.
/// </summary>
public sealed class SshSlurmPersonalClusterTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int CtldPort = 6817;
    private const int SlurmdPort = 6818;
    private const int SshPort = 22;
    private static readonly string[] SiteNames = ["a", "b"];
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(300);
    private readonly List<HostProcess> _daemons = [];
    private SiteTopology? _topology;
    private string _work = "";

    public async Task InitializeAsync()
    {
        _topology = await SiteTopology.CreateAsync(new TopologySpec([new SiteSpec("a", 2), new SiteSpec("b", 2), new SiteSpec("s", 0)]));
        _work = HpcNodes.CreateWorkDirectory("up-ssh");
    }

    public async Task DisposeAsync()
    {
        if (File.Exists(Path.Combine(State, "state.json")))
        {
            output.WriteLine((await Isthmus(Long, "down", "--state", State)).ToString());
        }

        for (var i = _daemons.Count - 1; i >= 0; i--)
        {
            await _daemons[i].StopAsync(TimeSpan.FromSeconds(5));
        }

        if (_topology is not null)
        {
            await _topology.DisposeAsync();
        }

        HpcNodes.DeleteWorkDirectory(_work);
    }

    private Site SiteOf(string name) => _topology!.SiteList.Single(s => s.Name == name);

    private GatewayHost Submit => SiteOf("s").Gateway;

    private string State => Path.Combine(_work, "state");

    private string SiteWork(string site) => Path.Combine(_work, "site-" + site);

    [Fact]
    public async Task UpOverSsh_SrunAcrossSites_GrowShrink_Scancel_Down()
    {
        var keys = new Dictionary<string, string>();
        foreach (var site in SiteNames)
        {
            keys[site] = await StartSiteAsync(SiteOf(site));
        }

        var file = Path.Combine(_work, "cluster.toml");
        var sites = string.Concat(SiteNames.Select(s => $"""

            [sites.{s}]
            access = "ssh"
            scheduler = "slurm"
            partition = "batch"
            walltime = "30:00"
            min = 1
            max = 2
            wan = "{SiteOf(s).Gateway.WanAddress}:7400"
            lan = "{SiteOf(s).Gateway.Address}:7401"
            work_dir = "{SiteWork(s)}"

            [sites.{s}.ssh]
            host = "{SiteOf(s).Gateway.WanAddress}"
            user = "root"
            port = {SshPort}
            identity = "{keys[s]}"
            options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]

            """));
        await File.WriteAllTextAsync(file, $"""
            [cluster]
            name = "acc"
            network = "100.64.0.0/16"

            [submit]
            wan = "{Submit.WanAddress}"
            lan = "127.0.0.1"

            [manager]
            kind = "slurm"
            {sites}
            """);

        var logs = SiteNames.SelectMany(s => new[] { Path.Combine(SiteWork(s), "logs", "router.log"), Path.Combine(SiteWork(s), "jobs", s + "1.log") })
            .Concat([Path.Combine(State, "logs", "manager.log"), Path.Combine(State, "slurm", "slurmctld.log")]);
        try
        {
            var up = await Isthmus(Long, "up", file, "--state", State, "--wait", "240");
            output.WriteLine(up.ToString());
            Assert.True(up.ExitCode == 0, up.ToString());
            Assert.Contains("a nodes: a1 ", up.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("b nodes: b1 ", up.StandardOutput, StringComparison.Ordinal);
            Assert.Single(await SiteJobsAsync("a"));
            Assert.Single(await SiteJobsAsync("b"));

            var srun = await Isthmus(Long, "shell", "--state", State, "-c", "srun -N2 hostname");
            Assert.True(srun.ExitCode == 0, srun.ToString());
            Assert.Equal(["a1", "b1"], Lines(srun.StandardOutput).Order(StringComparer.Ordinal));

            await NetPipeBatchJobAsync();

            var grow = await Isthmus(Long, "grow", "a", "1", "--state", State, "--wait", "180");
            Assert.True(grow.ExitCode == 0, grow.ToString());
            Assert.Equal(["a1", "a2", "b1"], await SinfoAsync());
            Assert.Equal(2, (await SiteJobsAsync("a")).Count);

            var shrink = await Isthmus(Long, "shrink", "a", "1", "--state", State);
            Assert.True(shrink.ExitCode == 0, shrink.ToString());
            Assert.Equal(["a1", "b1"], await SinfoAsync());
            Assert.Single(await SiteJobsAsync("a"));

            // The site cancels a proxy by itself: its node leaves the personal cluster, nothing hangs, and the
            // manager keeps site b at its minimum with a new proxy.
            var b1 = (await SiteJobsAsync("b")).Single();
            (await SiteSlurmAsync("b", "scancel", b1)).EnsureSuccess();
            await Poll.AssertAsync(async () => !(await SinfoAsync()).Contains("b1"), Long, "b1 leaves after scancel", TimeSpan.FromSeconds(1));
            await Poll.AssertAsync(async () => (await SinfoAsync()).Contains("b2"), Long, "b2 replaces b1", TimeSpan.FromSeconds(1));
            var again = await Isthmus(Long, "shell", "--state", State, "-c", "srun -N2 hostname");
            Assert.Equal(["a1", "b2"], Lines(again.StandardOutput).Order(StringComparer.Ordinal));

            var down = await Isthmus(Long, "down", "--state", State);
            output.WriteLine(down.ToString());
            Assert.True(down.ExitCode == 0, down.ToString());
            Assert.Empty(await SiteJobsAsync("a"));
            Assert.Empty(await SiteJobsAsync("b"));
            Assert.False(Directory.Exists(State));
            Assert.False(Directory.Exists(SiteWork("a")));
            Assert.False(Directory.Exists(SiteWork("b")));
            Assert.DoesNotContain(ProcessesMentioning(_work), p => !p.Contains("slurm-site", StringComparison.Ordinal));
        }
        catch
        {
            foreach (var log in logs.Where(File.Exists))
            {
                output.WriteLine($"--- {log}");
                output.WriteLine(string.Join('\n', File.ReadAllLines(log).TakeLast(30)));
            }

            throw;
        }
    }

    /// <summary>
    /// The acceptance's MPI job: an sbatch script in the personal cluster whose mpirun (Open MPI's Slurm launcher:
    /// orted on the other node through srun, whose TaskProlog makes it a program of that node) runs NetPIPE with
    /// one rank on a1 (site a) and one on b1 (site b), with the same transport options as the HPC tests' mpirun.
    /// The job must end COMPLETED with exit code 0 and its output file hold NetPIPE's rows up to 1 MiB.
    /// </summary>
    private async Task NetPipeBatchJobAsync()
    {
        var dir = Path.Combine(_work, "mpi-job");
        Directory.CreateDirectory(dir);
        var netpipe = Path.Combine(dir, "np.out");
        var script = Path.Combine(dir, "netpipe.sbatch");
        await File.WriteAllTextAsync(script, $"""
            #!/bin/sh
            #SBATCH -J netpipe -N2 --ntasks-per-node=1 -t 5 -o {dir}/job-%j.out
            exec mpirun.openmpi --allow-run-as-root -np 2 --map-by node --bind-to none --mca mpi_yield_when_idle 1               --mca pml ob1 --mca btl tcp,self --mca btl_tcp_disable_family 6               --mca btl_tcp_if_include 100.64.0.0/16 --mca oob_tcp_if_include 100.64.0.0/16               NPopenmpi -p 0 -n 20 -u 1048576 -o {netpipe}

            """);

        // --wait bounds nothing by itself: the job's own limit (-t 5) and the command's timeout do.
        var sbatch = await Isthmus(Long, "shell", "--state", State, "-c", $"sbatch --parsable --wait {script}");
        output.WriteLine(sbatch.ToString());
        var job = Lines(sbatch.StandardOutput).FirstOrDefault() ?? "";
        var jobOut = Path.Combine(dir, $"job-{job}.out");
        var text = File.Exists(jobOut) ? await File.ReadAllTextAsync(jobOut) : "(no job output)";
        output.WriteLine(text);
        Assert.True(sbatch.ExitCode == 0, sbatch + "\n" + text);

        var show = await Isthmus(Short, "shell", "--state", State, "-c", $"scontrol show job {job}");
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("JobState=COMPLETED", show.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"\bExitCode=0:0\b", show.StandardOutput);
        Assert.Matches(@"\bNodeList=(a1,b1|b1,a1)\b", show.StandardOutput);

        // NetPIPE's ranks print "RANK: processor name": one on each personal node (rank 0 on the batch host,
        // whichever of the two Slurm picked).
        var ranks = Lines(text).Where(l => l.StartsWith("0: ", StringComparison.Ordinal) || l.StartsWith("1: ", StringComparison.Ordinal))
            .Select(l => l[3..]).Where(n => n is "a1" or "b1").ToList();
        Assert.Equal(["a1", "b1"], ranks.Order(StringComparer.Ordinal));

        // The output file: "bytes Mbit/s seconds" per size, from 1 byte up to 1 MiB.
        var rows = (await File.ReadAllLinesAsync(netpipe))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 3)
            .Select(f => (Bytes: long.Parse(f[0], CultureInfo.InvariantCulture), Mbps: double.Parse(f[1], CultureInfo.InvariantCulture), Seconds: double.Parse(f[2], CultureInfo.InvariantCulture)))
            .ToList();
        var first = Assert.Single(rows, r => r.Bytes == 1);
        var last = Assert.Single(rows, r => r.Bytes == 1048576);
        Assert.All(rows, r => Assert.True(r.Mbps > 0 && r.Seconds > 0, $"{r.Bytes} bytes: {r.Mbps} Mbit/s in {r.Seconds} s"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"NetPIPE sbatch job {job} a1<->b1 (personal cluster): latency(1 B, one-way) {first.Seconds * 1e6:0.0} us, bandwidth(1 MiB) {last.Mbps:0} Mbit/s ({rows.Count} sizes)"));
    }

    /// <summary>A site's own Slurm (munged + slurmctld on the head, slurmd on both nodes) and sshd on the head; returns the user key.</summary>
    private async Task<string> StartSiteAsync(Site site)
    {
        var w = Path.Combine(_work, "slurm-site-" + site.Name);
        Directory.CreateDirectory(w);
        File.SetUnixFileMode(w, (UnixFileMode)0x1ED);
        foreach (var d in new[] { "state", "log", "tmp", "spool/n1", "spool/n2" })
        {
            Directory.CreateDirectory(Path.Combine(w, d));
        }

        var key = Path.Combine(w, "munge.key");
        (await Shell.RunAsync("mungekey", ["-c", "-k", key, "-b", "1024"], Short)).EnsureSuccess();
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var hosts = new List<NetHost> { site.Gateway };
        hosts.AddRange(site.Nodes);
        var confs = new Dictionary<NetHost, string>();
        foreach (var host in hosts)
        {
            var munge = Path.Combine(w, "munge-" + host.Name);
            Directory.CreateDirectory(munge);
            File.SetUnixFileMode(munge, (UnixFileMode)0x1ED);
            var socket = Path.Combine(munge, "munged.socket");
            confs[host] = await WriteSiteConfigAsync(site, w, host.Name, socket);
            _daemons.Add(host.Start("munged", "-F", "-S", socket, "--key-file=" + key, "--pid-file=" + Path.Combine(munge, "pid"),
                "--log-file=" + Path.Combine(munge, "log"), "--seed-file=" + Path.Combine(munge, "seed")));
        }

        await Poll.AssertAsync(() => Task.FromResult(hosts.All(h => File.Exists(Path.Combine(w, "munge-" + h.Name, "munged.socket")))), Short, "munged sockets");
        _daemons.Add(site.Gateway.Start("slurmctld", "-D", "-i", "-f", confs[site.Gateway]));
        foreach (var (node, i) in site.Nodes.Select((n, i) => (n, i)))
        {
            _daemons.Add(node.Start("slurmd", "-D", "-N", "n" + (i + 1), "-f", confs[node]));
        }

        try
        {
            await Poll.AssertAsync(async () => (await SiteSlurmAsync(site.Name, "sinfo", "-h", "-N", "-o", "%t")).StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.Trim() == "idle") == 2,
                TimeSpan.FromSeconds(60), $"site {site.Name}: both slurmd idle", TimeSpan.FromMilliseconds(500));
        }
        catch (TimeoutException)
        {
            foreach (var log in Directory.GetFiles(Path.Combine(w, "log")))
            {
                output.WriteLine($"--- {log}\n{string.Join('\n', File.ReadAllLines(log).TakeLast(15))}");
            }

            throw;
        }

        var sshd = await SshdSetup.CreateAsync(Path.Combine(w, "sshd"), site.Gateway.WanAddress, SshPort);
        // Sessions find the site's Slurm like users of a real head node find theirs.
        await File.AppendAllTextAsync(sshd.Config, $"\nSetEnv SLURM_CONF={confs[site.Gateway]}\n");
        var daemon = site.Gateway.Start("/usr/sbin/sshd", "-D", "-e", "-f", sshd.Config);
        _daemons.Add(daemon);
        await daemon.WaitForLineAsync(l => l.Contains("Server listening on", StringComparison.Ordinal), Short);
        return sshd.UserKey;
    }

    private static readonly string MachineName = File.ReadAllText("/proc/sys/kernel/hostname").Trim();

    // The namespaces share the machine's host name (no UTS namespace): Slurm's daemons compare it with
    // SlurmctldHost and NodeHostname, so those carry it, and the addresses say where each daemon is.
    private static async Task<string> WriteSiteConfigAsync(Site site, string w, string host, string mungeSocket)
    {
        var etc = Path.Combine(w, "etc-" + host);
        Directory.CreateDirectory(etc);
        await File.WriteAllTextAsync(Path.Combine(etc, "cgroup.conf"), "CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n");
        var nodes = string.Join('\n', site.Nodes.Select((n, i) => $"NodeName=n{i + 1} NodeHostname={MachineName} NodeAddr={n.Address} CPUs=2 State=UNKNOWN"));
        var file = Path.Combine(etc, "slurm.conf");
        await File.WriteAllTextAsync(file, $"""
            ClusterName=site{site.Name}
            SlurmctldHost={MachineName}({site.Gateway.Address})
            SlurmctldPort={CtldPort}
            SlurmdPort={SlurmdPort}
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket={mungeSocket}
            StateSaveLocation={w}/state
            SlurmdSpoolDir={w}/spool/%n
            TmpFS={w}/tmp
            SlurmctldPidFile={w}/state/slurmctld.pid
            SlurmdPidFile={w}/spool/%n.pid
            SlurmctldLogFile={w}/log/slurmctld.log
            SlurmdLogFile={w}/log/slurmd-%n.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            MpiDefault=none
            SwitchType=switch/none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            JobCompType=jobcomp/none
            SchedulerParameters=batch_sched_delay=0
            MailProg=/bin/true
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            ReturnToService=2
            InactiveLimit=0
            KillWait=30
            MinJobAge=2
            {nodes}
            PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP

            """);
        return file;
    }

    private Task<CommandResult> SiteSlurmAsync(string site, string command, params string[] args) =>
        SiteOf(site).Gateway.RunAsync("/usr/bin/env", ["SLURM_CONF=" + Path.Combine(_work, "slurm-site-" + site, $"etc-{site}-gw", "slurm.conf"), command, .. args], Short);

    private async Task<List<string>> SiteJobsAsync(string site)
    {
        var result = await SiteSlurmAsync(site, "squeue", "-h", "-o", "%i");
        result.EnsureSuccess();
        return [.. Lines(result.StandardOutput)];
    }

    private Task<CommandResult> Isthmus(TimeSpan timeout, params string[] args) =>
        Submit.RunAsync(IsthmusPaths.Isthmus, args, timeout, new Dictionary<string, string?> { ["ISTHMUS_STATE"] = null });

    private async Task<List<string>> SinfoAsync()
    {
        var result = await Isthmus(Long, "shell", "--state", State, "-c", "sinfo -h -N -o %N");
        Assert.True(result.ExitCode == 0, result.ToString());
        return [.. Lines(result.StandardOutput).Distinct().Order(StringComparer.Ordinal)];
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static List<string> ProcessesMentioning(string dir)
    {
        var found = new List<string>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(d, "stat"));
                if (stat[(stat.LastIndexOf(')') + 2)..][0] == 'Z')
                {
                    continue;
                }

                var cmdline = File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(dir, StringComparison.Ordinal) || File.ReadAllText(Path.Combine(d, "environ")).Contains(dir, StringComparison.Ordinal))
                {
                    found.Add($"{pid}: {cmdline}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return found;
    }
}
