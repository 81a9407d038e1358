using System.Text;
using Isthmus.Personal.Sites;
using Isthmus.Personal.State;

namespace Isthmus.Personal.Schedulers;

/// <summary>
/// The one head-node script batch schedulers share: write the proxy's job script into the site's work
/// directory (a quoted here-document, so nothing in it is expanded on the way), make it private, submit it.
/// </summary>
internal static class BatchScript
{
    /// <summary>The job script of <paramref name="node"/> at the site.</summary>
    public static string PathFor(SiteContext site, string node, string extension) => Path.Combine(site.WorkDir, "jobs", node + extension);

    /// <summary>A script that writes <paramref name="body"/> to <paramref name="path"/> and then runs <paramref name="submit"/>.</summary>
    public static string WriteThenSubmit(SiteContext site, string path, string body, IEnumerable<string> submit) =>
        new StringBuilder()
            .Append("mkdir -p ").Append(SiteShell.Quote(Path.Combine(site.WorkDir, "jobs"))).Append(" && cat > ").Append(SiteShell.Quote(path))
            .Append(" <<'ISTHMUS_EOF'\n").Append(body).Append("ISTHMUS_EOF\n")
            .Append("chmod 700 ").Append(SiteShell.Quote(path)).Append(" && ").Append(SiteShell.Command(submit)).Append('\n')
            .ToString();

    /// <summary>The job id a submit command printed last (<c>sbatch --parsable</c>: "ID" or "ID;CLUSTER"; <c>qsub -terse</c>: "ID").</summary>
    public static string JobId(SiteContext site, string command, string output)
    {
        var id = output.Trim().Split('\n')[^1].Split(';')[0].Trim();
        if (id.Length == 0 || !id.All(char.IsAsciiDigit))
        {
            throw new Core.UserException($"site {site.Name}: {command} printed '{output.Trim()}', not a job id", 1);
        }

        return id;
    }

    /// <summary>Waits until the scheduler no longer lists <paramref name="proxy"/> after <paramref name="cancel"/> (bounded: 90 s).</summary>
    public static async Task WaitUntilGoneAsync(ISiteScheduler scheduler, SiteContext site, ProxyRecord proxy, string cancel, string list, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + CancelDeadline;
        while (DateTime.UtcNow < deadline)
        {
            var states = await scheduler.StatesAsync(site, [proxy], cancellationToken).ConfigureAwait(false);
            if (states[proxy.JobId] == ProxyJobState.Gone)
            {
                return;
            }

            await Task.Delay(500, cancellationToken).ConfigureAwait(false);
        }

        throw new Core.UserException($"site {site.Name}: job {proxy.JobId} (node {proxy.Node}) is still in {list} {CancelDeadline.TotalSeconds:0} s after {cancel}", 1);
    }

    /// <summary>How long a cancelled proxy may take to leave the queue: its drain (≤ 20 s) plus the scheduler's own kill delay.</summary>
    private static readonly TimeSpan CancelDeadline = TimeSpan.FromSeconds(90);
}
