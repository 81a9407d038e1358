using Isthmus.Personal.Sites;
using Isthmus.Personal.State;

namespace Isthmus.Personal.Schedulers;

/// <summary>
/// A site's Slurm: a job proxy is a one-node batch job (<c>sbatch</c>) whose script execs
/// <c>isthmus proxy</c>; <c>scancel</c> ends it (Slurm sends SIGTERM, then SIGKILL after its KillWait), and
/// <c>squeue</c> tells its state. The job's runtime directory is on the compute node's own /tmp.
/// </summary>
public sealed class SlurmSiteScheduler : ISiteScheduler
{
    public async Task<ProxyRecord> SubmitAsync(SiteContext site, string node, CancellationToken cancellationToken)
    {
        var script = BatchScript.PathFor(site, node, ".sbatch");
        var batch = $"""
            #!/bin/sh
            # Isthmus job proxy: this job becomes node {node} of the personal cluster (see 'isthmus status').
            export ISTHMUS_RUNTIME_DIR="${"{"}TMPDIR:-/tmp{"}"}/isthmus-$SLURM_JOB_ID"
            mkdir -p "$ISTHMUS_RUNTIME_DIR" && chmod 700 "$ISTHMUS_RUNTIME_DIR"
            {SiteShell.Quote(site.Isthmus)} proxy {SiteShell.Quote(site.WorkDir)} --name {node}
            rc=$?
            rm -rf "$ISTHMUS_RUNTIME_DIR"
            exit $rc

            """;
        var args = new List<string> { "sbatch", "--parsable", "-J", "isthmus-" + node, "-N", "1", "-n", "1", "-o", site.ProxyLog(node), "--signal=B:TERM@60" };
        if (site.Spec.Partition is { } partition)
        {
            args.AddRange(["-p", partition]);
        }

        if (site.Spec.Walltime is { } walltime)
        {
            args.AddRange(["-t", walltime]);
        }

        args.AddRange(site.Spec.SubmitOptions);
        args.Add(script);
        var command = BatchScript.WriteThenSubmit(site, script, batch, args);
        var output = await site.Shell.CheckAsync("sbatch", command, cancellationToken: cancellationToken).ConfigureAwait(false);
        var id = BatchScript.JobId(site, "sbatch", output);
        return new ProxyRecord { Site = site.Name, Node = node, JobId = id, Submitted = DateTimeOffset.UtcNow };
    }

    public async Task CancelAsync(SiteContext site, ProxyRecord proxy, CancellationToken cancellationToken)
    {
        await site.Shell.CheckAsync("scancel", SiteShell.Command("scancel", proxy.JobId), cancellationToken: cancellationToken).ConfigureAwait(false);
        await BatchScript.WaitUntilGoneAsync(this, site, proxy, "scancel", "squeue", cancellationToken).ConfigureAwait(false);
    }

    public async Task<Dictionary<string, ProxyJobState>> StatesAsync(SiteContext site, IReadOnlyList<ProxyRecord> proxies, CancellationToken cancellationToken)
    {
        var result = proxies.ToDictionary(p => p.JobId, _ => ProxyJobState.Gone);
        if (proxies.Count == 0)
        {
            return result;
        }

        // All of the user's jobs, then filtered: squeue -j fails outright when one of the ids is gone.
        var output = await site.Shell.CheckAsync("squeue", "squeue -h -u \"$(id -un)\" -o '%i %T'", cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = line.Split(' ', 2);
            if (parts.Length == 2 && result.ContainsKey(parts[0]))
            {
                result[parts[0]] = parts[1] switch
                {
                    "PENDING" or "CONFIGURING" or "REQUEUED" or "REQUEUE_HOLD" or "SUSPENDED" => ProxyJobState.Pending,
                    "RUNNING" or "COMPLETING" or "SIGNALING" or "STAGE_OUT" => ProxyJobState.Running,
                    _ => ProxyJobState.Gone,
                };
            }
        }

        return result;
    }
}
