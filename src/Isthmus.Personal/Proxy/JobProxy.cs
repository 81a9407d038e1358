using System.Diagnostics;
using Isthmus.Core;
using Isthmus.Node;
using Isthmus.Personal.Slurm;
using Microsoft.Extensions.Logging;

namespace Isthmus.Personal.Proxy;

/// <summary>
/// The body of a job proxy (<c>isthmus proxy WORK --name NODE</c>), whatever scheduler started it: enrols NODE
/// (an in-process node agent), writes <c>WORK/nodes/NODE/up</c> (<c>NODE VIP</c>), then runs the personal job
/// manager's worker as a program of NODE: a private munged and <c>slurmd -Z</c> (interposed with
/// <c>isthmus run</c>). It lives until SIGTERM (scancel, walltime, shrink, down) or until the agent or a worker
/// dies; then it stops the workers, leaves the overlay and removes its files.
/// </summary>
public sealed class JobProxy(string workDir, string node, ILoggerFactory logging)
{
    private readonly ILogger _log = logging.CreateLogger("proxy");

    /// <summary>The node's directory at the site (its slurm.conf, munge socket, spool, the <c>up</c> file).</summary>
    public static string NodeDirectory(string workDir, string node) => Path.Combine(workDir, "nodes", node);

    /// <returns>0 after a requested stop, 1 when the agent or a worker failed.</returns>
    public async Task<int> RunAsync(Action<string> up, CancellationToken stop)
    {
        var config = ProxyConfig.Load(workDir);
        var dir = NodeDirectory(workDir, node);
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0x1ED); // 0755: munged wants its socket directory o+x and not writable by others
        var self = Environment.ProcessPath ?? throw new UserException("cannot find the isthmus executable", 1);
        var children = new List<Process>();
        // Not linked to stop: the agent must outlive the workers, which leave the personal Slurm through it.
        using var agentStop = new CancellationTokenSource();
        using var agent = new NodeAgent(config.ClusterDirectory, config.Site, node, null, logging);
        var vipSource = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var agentTask = Task.Run(() => agent.RunAsync(v => vipSource.TrySetResult(v), agentStop.Token), CancellationToken.None);
        // A stop before the node is up has no workers to wait for: it ends the agent at once.
        using var early = stop.Register(() =>
        {
            if (!vipSource.Task.IsCompleted)
            {
                agentStop.Cancel();
            }
        });
        var failed = false;
        try
        {
            if (await Task.WhenAny(vipSource.Task, agentTask).ConfigureAwait(false) != vipSource.Task)
            {
                await agentTask.ConfigureAwait(false); // its exception says why
                return stop.IsCancellationRequested ? 0 : 1;
            }

            var vip = await vipSource.Task.ConfigureAwait(false);
            File.WriteAllText(Path.Combine(dir, "up"), $"{node} {vip}\n");
            up(vip);
            _log.LogInformation("node {Node} is up with VIP {Vip}", node, vip);

            if (config.Manager == "slurm")
            {
                children.Add(await StartMungeAsync(config, dir, stop).ConfigureAwait(false));
                var conf = WriteSlurmConfig(config, dir, self);
                children.Add(Start(self, ["run", "--node", node, "--", "slurmd", "-D", "-Z", "-N", node,
                    "--conf", $"CPUs={config.Cpus} Feature={config.Site}", "-f", conf]));
                _log.LogInformation("slurmd -Z started for {Node}, registering with {Ctld}:{Port}", node, config.CtldVip, config.CtldPort);
            }

            // Until asked to stop, or until a part we depend on ends by itself.
            var waits = children.Select(c => c.WaitForExitAsync(CancellationToken.None)).Append(agentTask).ToList();
            var stopped = Task.Delay(Timeout.Infinite, stop);
            var first = await Task.WhenAny(waits.Append(stopped)).ConfigureAwait(false);
            if (first != stopped)
            {
                failed = true;
                var which = first == agentTask ? "the node agent" : children[waits.IndexOf(first)].StartInfo.ArgumentList.FirstOrDefault(a => a is "slurmd" or "munged") ?? "a worker";
                _log.LogError("{Which} ended by itself; the proxy ends", which);
            }
            else
            {
                _log.LogInformation("node {Node} leaves: asked to stop", node);
            }
        }
        finally
        {
            if (children.Count > 0 && config.Manager == "slurm")
            {
                await LeaveSlurmAsync(self, dir).ConfigureAwait(false);
            }

            for (var i = children.Count - 1; i >= 0; i--)
            {
                await StopAsync(children[i]).ConfigureAwait(false);
            }

            await agentStop.CancelAsync().ConfigureAwait(false);
            try
            {
                await agentTask.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or UserException)
            {
                _log.LogDebug("agent ended: {Message}", e.Message);
            }

            if (File.Exists(Path.Combine(dir, "munge-dir")))
            {
                TryDelete(MungeDirectory(dir));
            }

            TryDelete(dir);
        }

        return failed ? 1 : 0;
    }

    /// <summary>
    /// Leaves the personal Slurm without leaving anything running: slurmstepd outlives slurmd by design, so
    /// the node is first set DOWN (Slurm requeues or ends its jobs and slurmd kills their steps), the proxy
    /// waits for the steps' sockets in the spool directory to go, and then kills whatever still carries this
    /// node's agent socket in its environment (slurmstepd and tasks inherit it from slurmd and the TaskProlog).
    /// </summary>
    private async Task LeaveSlurmAsync(string self, string dir)
    {
        var conf = Path.Combine(dir, "etc", "slurm.conf");
        try
        {
            using var scontrol = Start(self, ["run", "--node", node, "--", "/usr/bin/env", "SLURM_CONF=" + conf, "scontrol", "update",
                "nodename=" + node, "state=down", "reason=isthmus proxy ends"]);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await scontrol.WaitForExitAsync(wait.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or UserException)
        {
            _log.LogWarning("could not set {Node} down in the personal Slurm: {Message}", node, e.Message);
        }

        var spool = Path.Combine(dir, "spool");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline && Directory.Exists(spool)
               && Directory.EnumerateFileSystemEntries(spool, node + "_*").Any())
        {
            await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
        }

        var marker = "ISTHMUS_AGENT_SOCKET=" + RuntimeDirectory.SocketPath(RuntimeDirectory.Resolve(), node);
        foreach (var pid in ProcessesWithEnvironment(marker))
        {
            _log.LogWarning("pid {Pid} of node {Node} still runs after the node left; killing it", pid, node);
            Core.Native.Libc.Kill(pid, 9);
        }
    }

    private static List<int> ProcessesWithEnvironment(string entry)
    {
        var found = new List<int>();
        var self = Environment.ProcessId;
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid) || pid == self)
            {
                continue;
            }

            try
            {
                var environ = File.ReadAllBytes(Path.Combine(d, "environ"));
                if (System.Text.Encoding.UTF8.GetString(environ).Split('\0').Contains(entry))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone, or another user's
            }
        }

        return found;
    }

    private static string MungeDirectory(string dir)
    {
        var note = Path.Combine(dir, "munge-dir");
        if (!File.Exists(note))
        {
            File.WriteAllText(note, Path.Combine(Path.GetTempPath(), "isthmus-munge-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6))));
        }

        return File.ReadAllText(note).Trim();
    }

    private static async Task<Process> StartMungeAsync(ProxyConfig config, string dir, CancellationToken cancellationToken)
    {
        // munged wants every parent of its socket world-searchable (a 0700 home is not): a directory of its own
        // under the temporary directory, named in the node directory and removed when the proxy ends.
        var munge = MungeDirectory(dir);
        Directory.CreateDirectory(munge);
        File.SetUnixFileMode(munge, (UnixFileMode)0x1ED);
        var socket = Path.Combine(munge, "munged.socket");
        var process = Start("munged", ["-F", "-S", socket, "--key-file=" + config.MungeKey, "--pid-file=" + Path.Combine(munge, "munged.pid"),
            "--log-file=" + Path.Combine(dir, "munged.log"), "--seed-file=" + Path.Combine(munge, "munged.seed")]);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!File.Exists(socket))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new UserException($"munged did not start (see {Path.Combine(dir, "munged.log")})", 1);
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        return process;
    }

    private static string WriteSlurmConfig(ProxyConfig config, string dir, string self)
    {
        // Slurm starts each task with srun's environment; the TaskProlog's "export" lines make it a program of
        // the node it runs on instead (see docs/ARCHITECTURE.md, "Running cluster software").
        var prolog = Path.Combine(dir, "task-prolog.sh");
        File.WriteAllText(prolog, $"#!/bin/sh\nISTHMUS_RUNTIME_DIR={Sites.SiteShell.Quote(RuntimeDirectory.Resolve())} exec {Sites.SiteShell.Quote(self)} env --node \"$SLURMD_NODENAME\"\n");
        File.SetUnixFileMode(prolog, (UnixFileMode)0x1ED);
        var spool = Path.Combine(dir, "spool");
        Directory.CreateDirectory(spool);
        return new PersonalSlurmConfig(config.ClusterName, config.CtldName!, config.CtldVip!, config.CtldPort, config.SlurmdPort,
            Environment.UserName, Path.Combine(MungeDirectory(dir), "munged.socket"), spool, spool, Path.Combine(dir, "slurmd.log"), prolog)
            .Write(Path.Combine(dir, "etc"), controller: false);
    }

    private static Process Start(string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        // A proxy that is a site's batch job carries the site's SLURM_* variables (SLURM_CONF among them):
        // the personal Slurm's daemons must not see them.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("SLURM", StringComparison.Ordinal)).ToList())
        {
            info.Environment.Remove(key);
        }

        try
        {
            return Process.Start(info) ?? throw new UserException($"cannot start {file}", 1);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new UserException($"cannot start {file}: {e.Message} (is it installed on this node?)", e, 1);
        }
    }

    private async Task StopAsync(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                Core.Native.Libc.Kill(process.Id, 15);
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    _log.LogWarning("pid {Pid} ignored SIGTERM for 10 s; killing it", process.Id);
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            process.Dispose();
        }
    }

    private void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("could not remove {Dir}: {Message}", dir, e.Message);
        }
    }
}
