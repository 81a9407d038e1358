using Isthmus.Personal.Sites;
using Isthmus.Personal.Spec;
using Isthmus.Personal.State;

namespace Isthmus.Personal.Schedulers;

/// <summary>A site as the commands see it: its spec, its record in the state, how to reach it, its Isthmus.</summary>
/// <param name="Spec">The site's table of the personal-cluster file.</param>
/// <param name="Record">The site in state.json.</param>
/// <param name="Shell">Runs scripts at its head node.</param>
/// <param name="Isthmus">The isthmus executable at the site.</param>
public sealed record SiteContext(SiteSpec Spec, SiteRecord Record, SiteShell Shell, string Isthmus)
{
    public string Name => Spec.Name;

    public string WorkDir => Record.WorkDir;

    /// <summary>The log of a proxy at the site (the batch job's output).</summary>
    public string ProxyLog(string node) => Path.Combine(WorkDir, "jobs", node + ".log");

    public ISiteScheduler Scheduler => Spec.Scheduler switch
    {
        SchedulerKind.Slurm => new SlurmSiteScheduler(),
        SchedulerKind.Sge => new SgeSiteScheduler(),
        _ => new LocalForkScheduler(),
    };
}

/// <summary>What a site scheduler says about a job proxy.</summary>
public enum ProxyJobState
{
    /// <summary>Queued at the site.</summary>
    Pending,

    /// <summary>Running (its node may still be enrolling).</summary>
    Running,

    /// <summary>Ended, cancelled or unknown to the scheduler.</summary>
    Gone,
}

/// <summary>Submits, cancels and watches job proxies through a site's scheduler.</summary>
public interface ISiteScheduler
{
    /// <summary>Submits a proxy for <paramref name="node"/>; the record to keep (its job id).</summary>
    Task<ProxyRecord> SubmitAsync(SiteContext site, string node, CancellationToken cancellationToken);

    /// <summary>Cancels the proxy and waits until the scheduler no longer runs it.</summary>
    Task CancelAsync(SiteContext site, ProxyRecord proxy, CancellationToken cancellationToken);

    /// <summary>The state of each proxy (by job id); every proxy is answered.</summary>
    Task<Dictionary<string, ProxyJobState>> StatesAsync(SiteContext site, IReadOnlyList<ProxyRecord> proxies, CancellationToken cancellationToken);
}
