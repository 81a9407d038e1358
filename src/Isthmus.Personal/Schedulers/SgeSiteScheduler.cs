using System.Globalization;
using Isthmus.Personal.Sites;
using Isthmus.Personal.State;

namespace Isthmus.Personal.Schedulers;

/// <summary>
/// A site's (Son of) Grid Engine: a job proxy is a one-slot batch job (<c>qsub</c>) whose script runs
/// <c>isthmus proxy</c>; <c>qdel</c> ends it and <c>qstat</c> tells its state. Grid Engine kills with SIGKILL
/// unless asked to warn first, so proxies are submitted with <c>-notify</c> (SIGUSR2 before a qdel's SIGKILL,
/// SIGUSR1 before a suspend) and, with a walltime, a soft limit one minute before the hard one (SIGUSR1):
/// the script turns each warning into the SIGTERM after which a proxy drains and leaves.
/// </summary>
public sealed class SgeSiteScheduler : ISiteScheduler
{
    /// <summary>How long before the hard walltime the soft limit warns the proxy (as Slurm's <c>--signal=B:TERM@60</c>).</summary>
    private const int WarningSeconds = 60;

    public async Task<ProxyRecord> SubmitAsync(SiteContext site, string node, CancellationToken cancellationToken)
    {
        var script = BatchScript.PathFor(site, node, ".qsub");
        // The proxy runs as a child, not exec'd: the shell stays to forward Grid Engine's warnings (which may
        // reach only the script) and to clean the runtime directory. `wait` returns early on a trapped signal,
        // hence the loop.
        var batch = $$"""
            #!/bin/sh
            # Isthmus job proxy: this job becomes node {{node}} of the personal cluster (see 'isthmus status').
            export ISTHMUS_RUNTIME_DIR="${TMPDIR:-/tmp}/isthmus-$JOB_ID"
            mkdir -p "$ISTHMUS_RUNTIME_DIR" && chmod 700 "$ISTHMUS_RUNTIME_DIR"
            {{SiteShell.Quote(site.Isthmus)}} proxy {{SiteShell.Quote(site.WorkDir)}} --name {{node}} &
            pid=$!
            trap 'kill -TERM $pid 2>/dev/null' USR1 USR2 TERM
            wait $pid; rc=$?
            while kill -0 $pid 2>/dev/null; do wait $pid; rc=$?; done
            rm -rf "$ISTHMUS_RUNTIME_DIR"
            exit $rc

            """;
        var args = new List<string> { "qsub", "-terse", "-N", "isthmus-" + node, "-S", "/bin/sh", "-j", "y", "-o", site.ProxyLog(node), "-notify" };
        if (site.Spec.Partition is { } queue)
        {
            args.AddRange(["-q", queue]);
        }

        if (site.Spec.Walltime is { } walltime)
        {
            var hard = WalltimeSeconds(walltime);
            var soft = hard > 2 * WarningSeconds ? hard - WarningSeconds : hard / 2;
            args.AddRange(["-l", string.Create(CultureInfo.InvariantCulture, $"h_rt={hard},s_rt={soft}")]);
        }

        args.AddRange(site.Spec.SubmitOptions);
        args.Add(script);
        var output = await site.Shell.CheckAsync("qsub", BatchScript.WriteThenSubmit(site, script, batch, args), cancellationToken: cancellationToken).ConfigureAwait(false);
        return new ProxyRecord { Site = site.Name, Node = node, JobId = BatchScript.JobId(site, "qsub", output), Submitted = DateTimeOffset.UtcNow };
    }

    public async Task CancelAsync(SiteContext site, ProxyRecord proxy, CancellationToken cancellationToken)
    {
        await site.Shell.CheckAsync("qdel", SiteShell.Command("qdel", proxy.JobId), cancellationToken: cancellationToken).ConfigureAwait(false);
        await BatchScript.WaitUntilGoneAsync(this, site, proxy, "qdel", "qstat", cancellationToken).ConfigureAwait(false);
    }

    public async Task<Dictionary<string, ProxyJobState>> StatesAsync(SiteContext site, IReadOnlyList<ProxyRecord> proxies, CancellationToken cancellationToken)
    {
        var result = proxies.ToDictionary(p => p.JobId, _ => ProxyJobState.Gone);
        if (proxies.Count == 0)
        {
            return result;
        }

        var output = await site.Shell.CheckAsync("qstat", "qstat -u \"$(id -un)\"", cancellationToken: cancellationToken).ConfigureAwait(false);
        var failed = new List<string>();
        foreach (var (id, state) in ParseQstat(output))
        {
            if (result.ContainsKey(id))
            {
                result[id] = StateOf(state);
                if (state.Contains('E', StringComparison.Ordinal))
                {
                    failed.Add(id);
                }
            }
        }

        // A job in error (Eqw: its script could not start) stays in the queue until deleted; it will never
        // run, so it counts as gone and is deleted here, lest `down` leave it behind.
        if (failed.Count > 0)
        {
            await site.Shell.RunAsync(SiteShell.Command(["qdel", .. failed]), cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>Job id and state of each row of <c>qstat</c>'s table (a header line and a dashed rule first).</summary>
    internal static IEnumerable<(string Id, string State)> ParseQstat(string output)
    {
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (columns.Length >= 5 && columns[0].All(char.IsAsciiDigit))
            {
                yield return (columns[0], columns[4]);
            }
        }
    }

    /// <summary>Grid Engine's state letters: q(ueued), h(old), w(aiting), r(unning), t(ransferring), R(estarted), s/S/T (suspended), d(eleting), E(rror).</summary>
    internal static ProxyJobState StateOf(string state) =>
        state.Contains('E', StringComparison.Ordinal) ? ProxyJobState.Gone
        : state.Contains('r', StringComparison.Ordinal) || state.Contains('t', StringComparison.Ordinal) || state.Contains('d', StringComparison.Ordinal) ? ProxyJobState.Running
        : ProxyJobState.Pending;

    /// <summary>
    /// A walltime in Slurm's forms (the cluster file's one syntax for every scheduler): <c>M</c>, <c>M:S</c>,
    /// <c>H:M:S</c>, <c>D-H</c>, <c>D-H:M</c>, <c>D-H:M:S</c>; as seconds, which is what <c>h_rt</c> takes.
    /// </summary>
    internal static long WalltimeSeconds(string walltime)
    {
        var dash = walltime.IndexOf('-', StringComparison.Ordinal);
        var days = dash < 0 ? 0 : long.Parse(walltime[..dash], CultureInfo.InvariantCulture);
        var parts = walltime[(dash + 1)..].Split(':').Select(p => long.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        var (hours, minutes, seconds) = (dash >= 0, parts.Length) switch
        {
            (false, 1) => (0L, parts[0], 0L),
            (false, 2) => (0L, parts[0], parts[1]),
            (true, 1) => (parts[0], 0L, 0L),
            (true, 2) => (parts[0], parts[1], 0L),
            _ => (parts[0], parts[1], parts[2]),
        };
        return (((days * 24) + hours) * 60 + minutes) * 60 + seconds;
    }
}
