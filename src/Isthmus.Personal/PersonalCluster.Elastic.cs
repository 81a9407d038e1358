using Isthmus.Core;
using Isthmus.Personal.Schedulers;
using Isthmus.Personal.Sites;
using Isthmus.Personal.Slurm;
using Isthmus.Personal.Spec;
using Isthmus.Personal.State;

namespace Isthmus.Personal;

public sealed partial class PersonalCluster
{
    /// <summary>Submits <paramref name="count"/> more proxies at <paramref name="site"/>.</summary>
    public async Task GrowAsync(string site, int count, IClusterProgress progress, CancellationToken cancellationToken)
    {
        if (Site(site).Record.Failed is { } why)
        {
            throw new UserException($"site {site} did not come up at 'up' ({why}); fix that, then 'isthmus down' and 'isthmus up' again", 1);
        }

        for (var i = 0; i < count; i++)
        {
            await SubmitAsync(site, progress, cancellationToken).ConfigureAwait(false);
        }

        await UpdateAsync(r => r.Site(site).Floor = r.Proxies.Count(p => p.Site == site), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Releases <paramref name="count"/> proxies of <paramref name="site"/>, idle nodes first, then the newest: each
    /// node is drained in the personal Slurm, its running jobs are requeued (or, if Slurm refuses, reported),
    /// then its proxy is cancelled and the node deleted from the personal Slurm.
    /// </summary>
    /// <returns>One line per personal job that was requeued or could not be.</returns>
    public async Task<List<string>> ShrinkAsync(string site, int count, IClusterProgress progress, CancellationToken cancellationToken)
    {
        var context = Site(site);
        var slurm = HasSlurm ? await SafeNodeStatesAsync(cancellationToken).ConfigureAwait(false) : [];
        var victims = Record.Proxies.Where(p => p.Site == site)
            .OrderBy(p => slurm.GetValueOrDefault(p.Node) == "idle" ? 0 : 1).ThenByDescending(p => p.Submitted)
            .Take(count).ToList();
        if (victims.Count < count)
        {
            throw new UserException($"site {site} has {victims.Count} proxies, cannot release {count}");
        }

        // Lower the floor first, so that the manager does not replace the nodes being released.
        var remaining = Record.Proxies.Count(p => p.Site == site) - count;
        await UpdateAsync(r => r.Site(site).Floor = remaining, cancellationToken).ConfigureAwait(false);
        var notes = new List<string>();
        foreach (var proxy in victims)
        {
            notes.AddRange(await ReleaseAsync(context, proxy, "shrink", progress, cancellationToken).ConfigureAwait(false));
        }

        return notes;
    }

    private async Task<List<string>> ReleaseAsync(SiteContext site, ProxyRecord proxy, string why, IClusterProgress progress, CancellationToken cancellationToken)
    {
        var notes = new List<string>();
        if (HasSlurm)
        {
            notes.AddRange(await DrainAsync(proxy.Node, why, cancellationToken).ConfigureAwait(false));
        }

        progress.Report(site.Name, "proxies", $"{proxy.Node}: cancelling job {proxy.JobId}");
        await site.Scheduler.CancelAsync(site, proxy, cancellationToken).ConfigureAwait(false);
        if (HasSlurm)
        {
            await Slurm.ScontrolAsync(cancellationToken, "delete", "nodename=" + proxy.Node).ConfigureAwait(false);
        }

        await UpdateAsync(r => r.Proxies.RemoveAll(p => p.Site == proxy.Site && p.JobId == proxy.JobId), cancellationToken).ConfigureAwait(false);
        progress.Report(site.Name, "nodes", $"{proxy.Node} left ({why})");
        return notes;
    }

    /// <summary>Drains the node and requeues what runs on it, so no personal job is lost silently.</summary>
    private async Task<List<string>> DrainAsync(string node, string why, CancellationToken cancellationToken)
    {
        var notes = new List<string>();
        await Slurm.ScontrolAsync(cancellationToken, "update", "nodename=" + node, "state=drain", "reason=isthmus " + why).ConfigureAwait(false);
        var jobs = await SafeJobsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var job in jobs.Where(j => j.State is "RUNNING" or "CONFIGURING" && NodeList(j.Nodes).Contains(node)))
        {
            var requeue = await Slurm.ScontrolAsync(cancellationToken, "requeue", job.Id).ConfigureAwait(false);
            notes.Add(requeue.ExitCode == 0
                ? $"personal job {job.Id} was running on {node}: requeued"
                : $"personal job {job.Id} was running on {node} and could not be requeued ({requeue.FirstErrorLine()}): it ends with the node");
        }

        // A requeued job completes on the node first (its slurmd kills the tasks): let it, or the job would
        // stay COMPLETING on a node that is gone and the node could not be deleted.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline && (await SafeJobsAsync(cancellationToken).ConfigureAwait(false))
                   .Any(j => j.State is "RUNNING" or "COMPLETING" or "CONFIGURING" && NodeList(j.Nodes).Contains(node)))
        {
            await Task.Delay(500, cancellationToken).ConfigureAwait(false);
        }

        return notes;
    }

    /// <summary>Node names of a Slurm node list; the personal nodes are SITE + number, so "a[1-2],b1" style ranges are expanded.</summary>
    internal static HashSet<string> NodeList(string list)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        while (i < list.Length)
        {
            var start = i;
            var depth = 0;
            while (i < list.Length && (list[i] != ',' || depth > 0))
            {
                depth += list[i] == '[' ? 1 : list[i] == ']' ? -1 : 0;
                i++;
            }

            var item = list[start..i];
            i++;
            var open = item.IndexOf('[', StringComparison.Ordinal);
            if (open < 0)
            {
                if (item.Length > 0)
                {
                    names.Add(item);
                }

                continue;
            }

            var prefix = item[..open];
            foreach (var range in item[(open + 1)..item.IndexOf(']', StringComparison.Ordinal)].Split(','))
            {
                var bounds = range.Split('-');
                if (int.TryParse(bounds[0], out var lo) && int.TryParse(bounds[^1], out var hi))
                {
                    for (var n = lo; n <= hi && n - lo < 10000; n++)
                    {
                        var text = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
                        names.Add(prefix + (bounds[0].Length > 1 && bounds[0][0] == '0' ? text.PadLeft(bounds[0].Length, '0') : text));
                    }
                }
            }
        }

        return names;
    }

    /// <summary>
    /// Stops everything: the elastic manager, every proxy (running personal jobs are reported first), the
    /// personal Slurm, the login node, every router; then removes the sites' work directories and the state
    /// directory. Goes on past failures and reports them, so a half-up cluster can always be taken down.
    /// </summary>
    /// <returns>Lines to show: personal jobs that ended with the cluster, and anything that could not be cleaned up.</returns>
    public async Task<List<string>> DownAsync(IClusterProgress progress, CancellationToken cancellationToken, bool keepInstall = false)
    {
        var notes = new List<string>();
        var failed = false;
        async Task Try(string site, string what, Func<Task> action)
        {
            try
            {
                await action().ConfigureAwait(false);
            }
            catch (UserException e)
            {
                failed = true;
                notes.Add($"site {site}: {what}: {e.Message}");
                progress.Failed(site, $"{what}: {e.Message}");
            }
        }

        foreach (var manager in Record.Processes.Where(p => p.Role == "manager"))
        {
            await Try(PersonalClusterSpec.HomeSite, "stopping the manager", () => SiteProcesses.StopAsync(Home, manager, TimeSpan.FromSeconds(10), cancellationToken)).ConfigureAwait(false);
        }

        if (HasSlurm && Record.Processes.Any(p => p.Role == "slurmctld"))
        {
            var jobs = await SafeJobsAsync(cancellationToken).ConfigureAwait(false);
            foreach (var job in jobs)
            {
                notes.Add($"personal job {job.Id} ({job.State}{(job.Nodes.Length > 0 ? " on " + job.Nodes : "")}) cancelled: it ends with the cluster");
            }

            // Cancelled while their nodes still run, so that slurmd ends their steps (slurmstepd outlives slurmd).
            if (jobs.Count > 0)
            {
                await Slurm.ClientAsync("scancel", [.. jobs.Select(j => j.Id)], cancellationToken).ConfigureAwait(false);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (DateTime.UtcNow < deadline && (await SafeJobsAsync(cancellationToken).ConfigureAwait(false)).Count > 0)
                {
                    await Task.Delay(500, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        await Task.WhenAll(Record.Sites.Select(s => s.Name).Distinct().Select(name => Try(name, "cancelling proxies", async () =>
        {
            var site = Site(name);
            foreach (var proxy in Record.Proxies.Where(p => p.Site == name).ToList())
            {
                await Try(name, $"cancelling {proxy.Node} (job {proxy.JobId})", () => site.Scheduler.CancelAsync(site, proxy, cancellationToken)).ConfigureAwait(false);
                progress.Report(name, "proxies", $"{proxy.Node}: job {proxy.JobId} cancelled");
            }

            if (site.Record.Router is { } router)
            {
                await Try(name, "stopping the router", () => SiteProcesses.StopAsync(site.Shell, router, TimeSpan.FromSeconds(10), cancellationToken)).ConfigureAwait(false);
                progress.Report(name, "router", "stopped");
            }

            // Everything Isthmus put at the site is in its work directory.
            var keep = keepInstall && site.Spec.Access == AccessKind.Ssh;
            var script = keep
                ? $"cd {SiteShell.Quote(site.WorkDir)} 2>/dev/null && find . -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf {{}} +; exit 0"
                : $"rm -rf {SiteShell.Quote(site.WorkDir)}";
            if (site.Record.Untouched)
            {
                progress.Report(name, "router", "never reached at up: nothing to remove there");
            }
            else if (site.Spec.Access == AccessKind.Ssh || site.WorkDir != State.LocalSiteDirectory(name))
            {
                await Try(name, "removing the work directory", () => site.Shell.CheckAsync("removing the work directory", script, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }
        }))).ConfigureAwait(false);

        foreach (var process in Enumerable.Reverse(Record.Processes).Where(p => p.Role != "manager").ToList())
        {
            await Try(PersonalClusterSpec.HomeSite, "stopping " + process.Role, () => SiteProcesses.StopAsync(Home, process, TimeSpan.FromSeconds(10), cancellationToken)).ConfigureAwait(false);
            progress.Report(PersonalClusterSpec.HomeSite, process.Role, "stopped");
        }

        if (failed)
        {
            notes.Add($"kept {State.Path}: something could not be stopped; run 'isthmus down' again");
            return notes;
        }

        if (Record.MungeDirectory is { } munge && Directory.Exists(munge))
        {
            Directory.Delete(munge, recursive: true);
        }

        Directory.Delete(State.Path, recursive: true);
        return notes;
    }

    /// <summary>
    /// One step of the elastic manager (<c>isthmus manage</c>): forget proxies whose jobs ended (deleting their
    /// personal nodes), keep every site at its minimum, submit one more proxy where personal jobs wait and a
    /// site is below its maximum, and release nodes idle longer than the idle timeout above the minimum.
    /// </summary>
    public async Task ReconcileAsync(IClusterProgress progress, CancellationToken cancellationToken)
    {
        var slurm = HasSlurm ? await SafeNodeStatesAsync(cancellationToken).ConfigureAwait(false) : [];
        var pending = HasSlurm ? (await SafeJobsAsync(cancellationToken).ConfigureAwait(false)).Count(PendingDemand.IsDemand) : 0;
        var now = DateTimeOffset.UtcNow;
        foreach (var site in Sites.Where(s => s.Record.Failed is null).ToList())
        {
            Dictionary<string, ProxyJobState> states;
            var proxies = Record.Proxies.Where(p => p.Site == site.Name).ToList();
            try
            {
                states = await site.Scheduler.StatesAsync(site, proxies, cancellationToken).ConfigureAwait(false);
            }
            catch (UserException e)
            {
                progress.Failed(site.Name, e.Message);
                continue;
            }

            foreach (var gone in proxies.Where(p => states[p.JobId] == ProxyJobState.Gone))
            {
                if (HasSlurm)
                {
                    // Jobs on the node are requeued by Slurm (JobRequeue=1) when the node is deleted or goes down.
                    await Slurm.ScontrolAsync(cancellationToken, "delete", "nodename=" + gone.Node).ConfigureAwait(false);
                }

                await UpdateAsync(r =>
                {
                    r.Proxies.RemoveAll(p => p.Site == gone.Site && p.JobId == gone.JobId);
                    r.AddEvent($"site {site.Name}: proxy {gone.Node} (job {gone.JobId}) ended; node removed");
                }, cancellationToken).ConfigureAwait(false);
                progress.Report(site.Name, "nodes", $"{gone.Node} left (its job {gone.JobId} ended)");
            }

            await RestartRouterIfGoneAsync(site, progress, cancellationToken).ConfigureAwait(false);
            var live = proxies.Where(p => states[p.JobId] != ProxyJobState.Gone).ToList();
            var floor = site.Record.Floor ?? site.Spec.MinProxies;
            try
            {
                for (var i = live.Count; i < floor; i++)
                {
                    live.Add(await SubmitAsync(site.Name, progress, cancellationToken).ConfigureAwait(false));
                }
            }
            catch (UserException e)
            {
                // A refused submission (bad queue, quota, scheduler down) is this site's problem: say so, keep
                // the other sites going, try again next round.
                progress.Failed(site.Name, e.Message);
                await UpdateAsync(r => r.AddEvent($"site {site.Name}: {e.Message}"), cancellationToken).ConfigureAwait(false);
            }

            if (!HasSlurm)
            {
                continue;
            }

            // Idle timers: a node counts as idle from the first reconcile that saw it idle.
            foreach (var p in live)
            {
                var idle = slurm.GetValueOrDefault(p.Node) == "idle";
                if (idle != p.IdleSince.HasValue)
                {
                    await UpdateAsync(r =>
                    {
                        var rec = r.Proxies.FirstOrDefault(x => x.JobId == p.JobId && x.Site == p.Site);
                        rec?.IdleSince = idle ? now : null;
                    }, cancellationToken).ConfigureAwait(false);
                }
            }

            // Nodes are not released while personal jobs wait: a job may be waiting for exactly these plus more.
            var expired = Record.Proxies.Where(p => pending == 0 && p.Site == site.Name && p.IdleSince is { } since && now - since > Spec.IdleTimeout)
                .OrderBy(p => p.IdleSince).Take(Math.Max(0, live.Count - floor)).ToList();
            foreach (var p in expired)
            {
                await ReleaseAsync(site, p, "idle", progress, cancellationToken).ConfigureAwait(false);
            }
        }

        if (!HasSlurm)
        {
            return;
        }

        // Personal nodes no proxy stands for (a delete that failed while a job was completing): delete again.
        foreach (var orphan in slurm.Keys.Where(n => !Record.Proxies.Any(p => p.Node == n)))
        {
            await Slurm.ScontrolAsync(cancellationToken, "delete", "nodename=" + orphan).ConfigureAwait(false);
        }

        // Pending personal jobs and no node coming: one more proxy at the first site with room.
        var coming = Record.Proxies.Count(p => !slurm.ContainsKey(p.Node));
        if (pending > coming)
        {
            var room = Sites.FirstOrDefault(s => s.Record.Failed is null && Record.Proxies.Count(p => p.Site == s.Name) < Math.Max(s.Spec.MaxProxies, s.Record.Floor ?? 0));
            if (room is not null)
            {
                await SubmitAsync(room.Name, progress, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// A site router that died (crash, OOM, a site admin's kill) is started again: its nodes' agents re-enrol by
    /// themselves and keep their VIPs, and streams through it were reset when it died (see the router
    /// restart section of ARCHITECTURE.md). Only a router the cluster started and recorded is restarted.
    /// </summary>
    private async Task RestartRouterIfGoneAsync(SiteContext site, IClusterProgress progress, CancellationToken cancellationToken)
    {
        if (site.Record.Router is not { } router)
        {
            return;
        }

        var alive = await SiteProcesses.AliveAsync(site.Shell, [(router.Pid, router.StartTicks)], cancellationToken).ConfigureAwait(false);
        if (alive.Contains(router.Pid))
        {
            return;
        }

        progress.Failed(site.Name, $"the router (pid {router.Pid}) is gone; starting it again");
        await UpdateAsync(r => r.AddEvent($"site {site.Name}: router pid {router.Pid} was gone; restarted"), cancellationToken).ConfigureAwait(false);
        await StartRouterAsync(site, cancellationToken).ConfigureAwait(false);
        progress.Report(site.Name, "router", $"up again (pid {Record.Site(site.Name).Router?.Pid})");
    }

    private async Task<Dictionary<string, string>> SafeNodeStatesAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await Slurm.NodeStatesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (UserException)
        {
            return [];
        }
    }

    private async Task<List<PersonalJob>> SafeJobsAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await Slurm.JobsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (UserException)
        {
            return [];
        }
    }
}
