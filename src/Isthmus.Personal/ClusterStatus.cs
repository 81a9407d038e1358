using System.Text.Json.Serialization;
using Isthmus.Core;
using Isthmus.Personal.Schedulers;
using Isthmus.Personal.Sites;
using Isthmus.Personal.Spec;
using Isthmus.Personal.State;

namespace Isthmus.Personal;

/// <summary>What <c>isthmus status</c> shows (and prints as JSON with <c>--json</c>).</summary>
public sealed class ClusterStatus
{
    [JsonPropertyName("name")] public required string Name { get; init; }

    [JsonPropertyName("state_dir")] public required string StateDirectory { get; init; }

    [JsonPropertyName("login_vip")] public string? LoginVip { get; init; }

    [JsonPropertyName("manager")] public required string Manager { get; init; }

    [JsonPropertyName("processes")] public required List<ProcessStatus> Processes { get; init; }

    [JsonPropertyName("sites")] public required List<SiteStatus> Sites { get; init; }

    [JsonPropertyName("events")] public required List<string> Events { get; init; }
}

public sealed record ProcessStatus(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("alive")] bool Alive);

public sealed class SiteStatus
{
    [JsonPropertyName("name")] public required string Name { get; init; }

    [JsonPropertyName("access")] public required string Access { get; init; }

    [JsonPropertyName("scheduler")] public required string Scheduler { get; init; }

    [JsonPropertyName("router")] public required string Router { get; init; }

    [JsonPropertyName("wan")] public string? Wan { get; init; }

    [JsonPropertyName("min")] public int Min { get; init; }

    [JsonPropertyName("max")] public int Max { get; init; }

    [JsonPropertyName("proxies")] public required List<ProxyStatus> Proxies { get; init; }

    /// <summary>Why the site could not be asked, or null.</summary>
    [JsonPropertyName("error")] public string? Error { get; init; }
}

public sealed class ProxyStatus
{
    [JsonPropertyName("node")] public required string Node { get; init; }

    [JsonPropertyName("job")] public required string JobId { get; init; }

    /// <summary>pending, running, gone (from the site's scheduler), or unknown when the site did not answer.</summary>
    [JsonPropertyName("state")] public required string State { get; init; }

    [JsonPropertyName("vip")] public string? Vip { get; init; }

    /// <summary>The node's state in the personal Slurm (idle, alloc, mix, drain, down…), or null.</summary>
    [JsonPropertyName("slurm")] public string? SlurmState { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ClusterStatus))]
public sealed partial class ClusterStatusJsonContext : JsonSerializerContext;

/// <summary>Asks every site (in parallel, each bounded by the site shell's timeout) and the personal Slurm.</summary>
public static class ClusterStatusReader
{
    public static async Task<ClusterStatus> ReadAsync(PersonalCluster cluster, CancellationToken cancellationToken)
    {
        var record = cluster.Record;
        var home = new LocalSiteShell { Site = PersonalClusterSpec.HomeSite };
        var alive = await SiteProcesses.AliveAsync(home, record.Processes.Select(p => (p.Pid, p.StartTicks)), cancellationToken).ConfigureAwait(false);
        Dictionary<string, string> slurm = [];
        var ctldAlive = record.Processes.Any(p => p.Role == "slurmctld" && alive.Contains(p.Pid));
        if (cluster.HasSlurm && ctldAlive)
        {
            try
            {
                slurm = await cluster.Slurm.NodeStatesAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (UserException)
            {
                // status still shows the rest
            }
        }

        var sites = await Task.WhenAll(cluster.Sites.Select(s => ReadSiteAsync(s, record.Proxies.Where(p => p.Site == s.Name).ToList(), slurm, cancellationToken))).ConfigureAwait(false);
        return new ClusterStatus
        {
            Name = record.Name,
            StateDirectory = cluster.State.Path,
            LoginVip = record.LoginVip,
            Manager = cluster.Spec.Manager.Kind.ToString().ToLowerInvariant(),
            Processes = [.. record.Processes.Select(p => new ProcessStatus(p.Role, p.Pid, alive.Contains(p.Pid)))],
            Sites = [.. sites],
            Events = [.. record.Events],
        };
    }

    private static async Task<SiteStatus> ReadSiteAsync(SiteContext site, List<ProxyRecord> proxies, Dictionary<string, string> slurm, CancellationToken cancellationToken)
    {
        string router = "not started";
        string? error = null;
        Dictionary<string, ProxyJobState> states = [];
        Dictionary<string, string> vips = [];
        try
        {
            // A site that did not come up at up is not asked again: an unreachable head node would make every
            // status wait for ssh's connect timeout.
            if (site.Record.Failed is { } failed)
            {
                router = "did not come up";
                error = failed;
            }
            else if (site.Record.Router is { } r)
            {
                var alive = await SiteProcesses.AliveAsync(site.Shell, [(r.Pid, r.StartTicks)], cancellationToken).ConfigureAwait(false);
                router = alive.Count > 0 ? $"up (pid {r.Pid})" : $"DOWN (pid {r.Pid} gone)";
            }

            if (site.Record.Failed is null)
            {
                states = await site.Scheduler.StatesAsync(site, proxies, cancellationToken).ConfigureAwait(false);
                var up = await site.Shell.RunAsync($"cat {SiteShell.Quote(site.WorkDir)}/nodes/*/up 2>/dev/null; exit 0", cancellationToken: cancellationToken).ConfigureAwait(false);
                foreach (var line in up.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var parts = line.Split(' ');
                    if (parts.Length == 2)
                    {
                        vips[parts[0]] = parts[1];
                    }
                }
            }
        }
        catch (UserException e)
        {
            error = e.Message;
        }

        return new SiteStatus
        {
            Name = site.Name,
            Access = site.Spec.Access == AccessKind.Ssh ? $"ssh {site.Shell.Describe}" : "local",
            Scheduler = site.Spec.Scheduler.ToString().ToLowerInvariant(),
            Router = router,
            Wan = site.Record.Wan,
            Min = site.Spec.MinProxies,
            Max = site.Spec.MaxProxies,
            Error = error,
            Proxies = [.. proxies.Select(p => new ProxyStatus
            {
                Node = p.Node, JobId = p.JobId,
                State = states.TryGetValue(p.JobId, out var s) ? s.ToString().ToLowerInvariant() : "unknown",
                Vip = vips.GetValueOrDefault(p.Node), SlurmState = slurm.GetValueOrDefault(p.Node),
            })],
        };
    }
}
