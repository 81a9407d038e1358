using Isthmus.IntegrationTests.Overlay;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Hpc;

/// <summary>
/// A Slurm 22.05 cluster across two nodes, adapted from the shared recipe <c>slurm-cluster.sh</c>: a munged
/// per node (same key, private sockets), slurmctld and a static slurmd on the head node, and a dynamic
/// <c>slurmd -Z</c> on the other node, which registers with the address it connects from. Everything is a
/// program of its node (interposed on the overlay); state, sockets and logs live in one directory per test.
/// Across sites on the overlay (a1 + b1), and natively within one LAN as the baseline.
/// </summary>
public sealed class SlurmTests(HpcFixture fixture, ITestOutputHelper output) : IClassFixture<HpcFixture>
{
    private const int CtldPort = 16817;
    private const int DynamicSlurmdPort = 16818;
    private const int StaticSlurmdPort = 16819;
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task Srun_StaticAndDynamicNode_AcrossSites() => await RunAsync(await fixture.OverlayAsync(), "a1", "b1");

    [Fact]
    public async Task Srun_StaticAndDynamicNode_NativeBaseline() => await RunAsync(await fixture.NativeAsync(), "a1", "a2");

    private async Task RunAsync(HpcNodes nodes, string head, string dynamic)
    {
        var w = HpcNodes.CreateWorkDirectory("slurm");
        var processes = new List<HostProcess>();
        var logs = new List<string>();
        try
        {
            foreach (var dir in new[] { "state", "log", "out", $"spool/{head}", $"spool/{dynamic}", $"tmp/{head}", $"tmp/{dynamic}" })
            {
                Directory.CreateDirectory(Path.Combine(w, dir));
            }

            File.SetUnixFileMode(Path.Combine(w, "out"), (UnixFileMode)0x1FF);
            var key = Path.Combine(w, "munge.key");
            (await Shell.RunAsync("mungekey", ["-c", "-k", key, "-b", "1024"], Short)).EnsureSuccess();
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var taskProlog = nodes.IsOverlay ? await WriteTaskPrologAsync(nodes, w) : null;
            var conf = new Dictionary<string, string>();
            foreach (var node in new[] { head, dynamic })
            {
                var munge = Path.Combine(w, "munge-" + node);
                Directory.CreateDirectory(munge);
                File.SetUnixFileMode(munge, (UnixFileMode)0x1ED); // 0755: munged wants its socket directory o+x, not writable by others
                logs.Add(Path.Combine(munge, "munged.log"));
                conf[node] = await WriteConfigAsync(nodes, w, node, head, Path.Combine(munge, "munged.socket"), taskProlog);
                // -F: foreground, so the process (and its group) is ours to stop.
                processes.Add(nodes.Start(node, "munged", "-F", "-S", Path.Combine(munge, "munged.socket"), "--key-file=" + key,
                    "--pid-file=" + Path.Combine(munge, "munged.pid"), "--log-file=" + Path.Combine(munge, "munged.log"),
                    "--seed-file=" + Path.Combine(munge, "munged.seed")));
            }

            logs.AddRange([Path.Combine(w, "log", "slurmctld.log"), Path.Combine(w, "log", $"slurmd-{head}.log"), Path.Combine(w, "log", $"slurmd-{dynamic}.log")]);
            await nodes.WithLogsOnFailureAsync(output, () => logs, async () =>
            {
                // -D: foreground; -i: ignore state left from an earlier run (there is none: fresh directory).
                processes.Add(nodes.Start(head, "slurmctld", "-D", "-i", "-f", conf[head]));
                processes.Add(nodes.Start(head, "slurmd", "-D", "-N", head, "-f", conf[head]));
                // A dynamic node: not in slurm.conf; it registers itself and listens on the global SlurmdPort.
                processes.Add(nodes.Start(dynamic, "slurmd", "-D", "-Z", "-N", dynamic, "--conf", "CPUs=1", "-f", conf[dynamic]));

                await Topology.Poll.AssertAsync(async () =>
                {
                    HpcNodes.ThrowIfExited([.. processes]);
                    return (await Slurm(head, "scontrol", "ping")).StandardOutput.Contains("is UP", StringComparison.Ordinal);
                }, Short, "slurmctld answers scontrol ping", PollInterval);
                foreach (var node in new[] { head, dynamic })
                {
                    await Topology.Poll.AssertAsync(async () =>
                    {
                        HpcNodes.ThrowIfExited([.. processes]);
                        return (await Slurm(head, "sinfo", "-h", "-n", node, "-o", "%t")).StandardOutput.Trim() == "idle";
                    }, Short, $"node {node} is idle", PollInterval);
                }

                // The dynamic node's address is where its registration came from: its VIP on the overlay.
                var show = await Slurm(head, "scontrol", "show", "node", dynamic);
                output.WriteLine(show.StandardOutput);
                Assert.Contains($"NodeAddr={nodes.Address(dynamic)} ", show.StandardOutput, StringComparison.Ordinal);

                var srun = await Slurm(head, "srun", "-N2", "-l", "--chdir", Path.Combine(w, "out"), "hostname");
                output.WriteLine(srun.ToString());
                Assert.True(srun.ExitCode == 0, srun.ToString());
                var names = srun.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(l => l.Split(": ", 2)[1].Trim()).Order(StringComparer.Ordinal).ToList();
                Assert.Equal(new[] { nodes.HostName(head), nodes.HostName(dynamic) }.Order(StringComparer.Ordinal), names);
            });
        }
        finally
        {
            // slurmd before slurmctld before munged, as the recipe stops them.
            for (var i = processes.Count - 1; i >= 0; i--)
            {
                await processes[i].StopAsync(TimeSpan.FromSeconds(5));
            }

            HpcNodes.DeleteWorkDirectory(w);
        }

        // Slurm's client commands find the configuration (and through it munged's socket) in SLURM_CONF.
        Task<CommandResult> Slurm(string node, string command, params string[] args) =>
            nodes.RunAsync(node, Short, "/usr/bin/env", ["SLURM_CONF=" + Path.Combine(w, "etc-" + node, "slurm.conf"), command, .. args]);
    }

    /// <summary>
    /// slurm.conf for <paramref name="node"/> (each node has its own, like separate machines: only the munged
    /// socket differs) and a cgroup.conf next to it: under `ip netns exec` /sys/fs/cgroup is not mounted, and
    /// slurmd's autodetection then fails; cgroup/v1 without automount initialises without it (task/none and
    /// proctrack/linuxproc never use it).
    /// </summary>
    private static async Task<string> WriteConfigAsync(HpcNodes nodes, string w, string node, string head, string mungeSocket, string? taskProlog)
    {
        var etc = Path.Combine(w, "etc-" + node);
        Directory.CreateDirectory(etc);
        await File.WriteAllTextAsync(Path.Combine(etc, "cgroup.conf"), "CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n");
        var file = Path.Combine(etc, "slurm.conf");
        await File.WriteAllTextAsync(file, $"""
            ClusterName=isthmus
            SlurmctldHost={nodes.HostName(head)}({nodes.Address(head)})
            SlurmctldPort={CtldPort}
            SlurmdPort={DynamicSlurmdPort}
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket={mungeSocket}
            StateSaveLocation={w}/state
            SlurmdSpoolDir={w}/spool/%n
            TmpFS={w}/tmp/%n
            SlurmctldPidFile={w}/state/slurmctld.pid
            SlurmdPidFile={w}/spool/%n/slurmd.pid
            SlurmctldLogFile={w}/log/slurmctld.log
            SlurmdLogFile={w}/log/slurmd-%n.log
            SlurmctldDebug=info
            SlurmdDebug=info
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            {(taskProlog is null ? "" : "TaskProlog=" + taskProlog)}
            MpiDefault=none
            SwitchType=switch/none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            JobCompType=jobcomp/none
            SchedulerType=sched/backfill
            MailProg=/bin/true
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            ReturnToService=2
            InactiveLimit=0
            KillWait=5
            # dynamic nodes (22.05): cons_tres, MaxNodeCount, no fanout, partition Nodes=ALL
            MaxNodeCount=16
            TreeWidth=65533
            NodeName={head} NodeHostname={nodes.HostName(head)} NodeAddr={nodes.Address(head)} Port={StaticSlurmdPort} CPUs=1 State=UNKNOWN
            PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP

            """);
        return file;
    }

    /// <summary>
    /// Slurm starts a task with srun's environment, so on the overlay a task on another node would carry the
    /// Isthmus identity (agent socket, VIP, host name) of srun's node. The TaskProlog, run by slurmstepd on the
    /// task's node, prints <c>export NAME=VALUE</c> lines that Slurm applies to the task: the variables that
    /// <c>isthmus run --node THIS-NODE</c> sets.
    /// </summary>
    private static async Task<string> WriteTaskPrologAsync(HpcNodes nodes, string w)
    {
        var file = Path.Combine(w, "task-prolog.sh");
        await File.WriteAllTextAsync(file, $"""
            #!/bin/sh
            # Each task becomes a program of the node it runs on: Slurm adds these "export" lines to its environment.
            ISTHMUS_RUNTIME_DIR={nodes.Cluster.RuntimeDirectory} exec {IsthmusPaths.Isthmus} env --node "$SLURMD_NODENAME"

            """);
        File.SetUnixFileMode(file, (UnixFileMode)0x1ED);
        return file;
    }
}
