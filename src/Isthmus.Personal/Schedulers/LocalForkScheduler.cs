using System.Globalization;
using Isthmus.Personal.Sites;
using Isthmus.Personal.State;

namespace Isthmus.Personal.Schedulers;

/// <summary>
/// The <c>local</c> scheduler: a job proxy is a background process on the head node (new session), its job id
/// its PID. For laptops, tests and the demo; there is no queue and no walltime.
/// </summary>
public sealed class LocalForkScheduler : ISiteScheduler
{
    /// <summary>How long a proxy has to leave cleanly after SIGTERM (it stops slurmd and munged first).</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(20);

    public async Task<ProxyRecord> SubmitAsync(SiteContext site, string node, CancellationToken cancellationToken)
    {
        var env = new Dictionary<string, string> { ["ISTHMUS_RUNTIME_DIR"] = Path.Combine(site.WorkDir, "run") };
        var started = await SiteProcesses.StartAsync(site.Shell, "proxy " + node, site.WorkDir, site.ProxyLog(node), env,
            [site.Isthmus, "proxy", site.WorkDir, "--name", node], cancellationToken).ConfigureAwait(false);
        return new ProxyRecord
        {
            Site = site.Name,
            Node = node,
            JobId = started.Pid.ToString(CultureInfo.InvariantCulture),
            StartTicks = started.StartTicks,
            Submitted = DateTimeOffset.UtcNow,
        };
    }

    public Task CancelAsync(SiteContext site, ProxyRecord proxy, CancellationToken cancellationToken) =>
        SiteProcesses.StopAsync(site.Shell, "proxy " + proxy.Node, int.Parse(proxy.JobId, CultureInfo.InvariantCulture), proxy.StartTicks, Grace, cancellationToken);

    public async Task<Dictionary<string, ProxyJobState>> StatesAsync(SiteContext site, IReadOnlyList<ProxyRecord> proxies, CancellationToken cancellationToken)
    {
        var alive = await SiteProcesses.AliveAsync(site.Shell,
            proxies.Select(p => (int.Parse(p.JobId, CultureInfo.InvariantCulture), p.StartTicks)), cancellationToken).ConfigureAwait(false);
        return proxies.ToDictionary(p => p.JobId,
            p => alive.Contains(int.Parse(p.JobId, CultureInfo.InvariantCulture)) ? ProxyJobState.Running : ProxyJobState.Gone);
    }
}
