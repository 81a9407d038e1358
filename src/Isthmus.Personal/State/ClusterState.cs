using System.Text.Json;
using System.Text.Json.Serialization;
using Isthmus.Core;
using Isthmus.Core.Security;

namespace Isthmus.Personal.State;

/// <summary>
/// <c>STATE/state.json</c>: everything a later command needs to find and stop what <c>up</c> started. Written
/// atomically after every change, under <see cref="StateLock"/>.
/// </summary>
public sealed class ClusterState
{
    [JsonPropertyName("name")] public required string Name { get; set; }

    /// <summary>The personal-cluster file <c>up</c> read (absolute).</summary>
    [JsonPropertyName("file")] public required string File { get; set; }

    [JsonPropertyName("created")] public DateTimeOffset Created { get; set; }

    /// <summary>The personal slurmctld's port (0 without a personal Slurm).</summary>
    [JsonPropertyName("ctld_port")] public int CtldPort { get; set; }

    /// <summary>The port every personal slurmd listens on, at its own VIP.</summary>
    [JsonPropertyName("slurmd_port")] public int SlurmdPort { get; set; }

    /// <summary>The directory of the submission host's munged socket (outside the state directory, see PersonalSlurm).</summary>
    [JsonPropertyName("munge_dir")] public string? MungeDirectory { get; set; }

    /// <summary>The login node's VIP.</summary>
    [JsonPropertyName("login_vip")] public string? LoginVip { get; set; }

    /// <summary>Processes at the submission host (router, login node, munged, slurmctld, manager), in start order.</summary>
    [JsonPropertyName("processes")] public List<ProcessRecord> Processes { get; set; } = [];

    [JsonPropertyName("sites")] public List<SiteRecord> Sites { get; set; } = [];

    [JsonPropertyName("proxies")] public List<ProxyRecord> Proxies { get; set; } = [];

    /// <summary>Things that went wrong and that the user should see in <c>status</c> (site, reason), newest last.</summary>
    [JsonPropertyName("events")] public List<string> Events { get; set; } = [];

    public SiteRecord Site(string name) => Sites.FirstOrDefault(s => s.Name == name)
        ?? throw new UserException($"no site '{name}' in this personal cluster (sites: {string.Join(", ", Sites.Select(s => s.Name))})");

    public void AddEvent(string text)
    {
        Events.Add($"{DateTimeOffset.UtcNow:HH:mm:ss} {text}");
        if (Events.Count > 50)
        {
            Events.RemoveAt(0);
        }
    }

    public static ClusterState Load(StateDirectory dir)
    {
        try
        {
            return JsonSerializer.Deserialize(System.IO.File.ReadAllBytes(dir.StateFile), ClusterStateJsonContext.Default.ClusterState)
                ?? throw new UserException($"{dir.StateFile} is empty", 1);
        }
        catch (JsonException e)
        {
            throw new UserException($"{dir.StateFile} is damaged ({e.Message}); stop what it lists by hand or remove {dir.Path}", e, 1);
        }
        catch (FileNotFoundException e)
        {
            throw new UserException($"no personal cluster in {dir.Path}", e, 1);
        }
    }

    public void Save(StateDirectory dir) =>
        SecureFile.WriteAtomic(dir.StateFile, JsonSerializer.Serialize(this, ClusterStateJsonContext.Default.ClusterState), secret: false);
}

/// <summary>A process started in the background (at the submission host or a head node): enough to find it again safely.</summary>
public sealed class ProcessRecord
{
    /// <summary>What it is: router, node, munged, slurmctld, manager.</summary>
    [JsonPropertyName("role")] public required string Role { get; set; }

    [JsonPropertyName("pid")] public int Pid { get; set; }

    /// <summary>Its start time in clock ticks since boot (/proc/PID/stat field 22), so a reused PID is never signalled.</summary>
    [JsonPropertyName("start")] public long StartTicks { get; set; }

    [JsonPropertyName("log")] public string? Log { get; set; }
}

/// <summary>A site as brought up.</summary>
public sealed class SiteRecord
{
    [JsonPropertyName("name")] public required string Name { get; set; }

    /// <summary>Isthmus's directory at the site (its cluster directory, binaries, proxies' files).</summary>
    [JsonPropertyName("work")] public required string WorkDir { get; set; }

    /// <summary>The site's router, at its head node.</summary>
    [JsonPropertyName("router")] public ProcessRecord? Router { get; set; }

    [JsonPropertyName("wan")] public string? Wan { get; set; }

    [JsonPropertyName("lan")] public string? Lan { get; set; }

    /// <summary>
    /// The proxies the manager keeps at the site at least: the file's <c>min</c> at first, then what the last
    /// <c>grow</c> or <c>shrink</c> left (the user's word wins over the file until the next <c>up</c>).
    /// </summary>
    [JsonPropertyName("floor")] public int? Floor { get; set; }

    /// <summary>The number in the next proxy's node name (SITE1, SITE2, …): names are never reused while up.</summary>
    [JsonPropertyName("next")] public int NextIndex { get; set; } = 1;

    /// <summary>
    /// Why the site did not come up at <c>up</c> (unreachable, a refused step), or null: the manager and
    /// <c>grow</c> leave such a site alone until the next <c>up</c>, so a dead site costs no retries.
    /// </summary>
    [JsonPropertyName("failed")] public string? Failed { get; set; }

    /// <summary>
    /// Nothing was made at the site: <c>up</c> failed before its work directory existed (e.g. ssh never
    /// connected). <c>down</c> then has nothing to remove there and need not reach it.
    /// </summary>
    [JsonPropertyName("untouched")] public bool Untouched { get; set; }
}

/// <summary>A job proxy: one job at a site that becomes one personal node.</summary>
public sealed class ProxyRecord
{
    [JsonPropertyName("site")] public required string Site { get; set; }

    [JsonPropertyName("node")] public required string Node { get; set; }

    /// <summary>The site scheduler's job id (for the local fork scheduler, the proxy's PID).</summary>
    [JsonPropertyName("job")] public required string JobId { get; set; }

    /// <summary>For the local fork scheduler: the proxy's start time (see <see cref="ProcessRecord.StartTicks"/>).</summary>
    [JsonPropertyName("start")] public long StartTicks { get; set; }

    [JsonPropertyName("submitted")] public DateTimeOffset Submitted { get; set; }

    /// <summary>When the personal node was last seen idle without a break (elasticity), or null.</summary>
    [JsonPropertyName("idle_since")] public DateTimeOffset? IdleSince { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ClusterState))]
internal sealed partial class ClusterStateJsonContext : JsonSerializerContext;
