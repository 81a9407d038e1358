using Isthmus.Core.Addressing;

namespace Isthmus.Personal.Spec;

/// <summary>
/// A personal-cluster file (<c>isthmus up FILE.toml</c>): the cluster's name and network, the submission host,
/// the personal job manager and the sites with how to reach them and how many job proxies to keep there.
/// Read by <see cref="PersonalClusterFileReader"/>.
/// </summary>
/// <param name="Path">The file as the user named it (absolute).</param>
/// <param name="Name">The cluster name, a DNS label; also the state directory's name.</param>
/// <param name="Network">The cluster network every VIP comes from.</param>
/// <param name="WanEncryption">Whether router-to-router legs are TLS 1.3.</param>
/// <param name="IdleTimeout">How long a personal node may stay idle above its site's minimum before it is released.</param>
/// <param name="Submit">The submission host (this machine): its router's addresses.</param>
/// <param name="Manager">The personal job manager.</param>
/// <param name="Sites">The sites, in file order.</param>
public sealed record PersonalClusterSpec(
    string Path,
    string Name,
    IPv4Cidr Network,
    bool WanEncryption,
    TimeSpan IdleTimeout,
    SubmitHostSpec Submit,
    ManagerSpec Manager,
    IReadOnlyList<SiteSpec> Sites)
{
    /// <summary>The name of the submission host's site in the cluster (it is a site with one node, the login node).</summary>
    public const string HomeSite = "home";

    /// <summary>The submission host's node: the personal controller and <c>isthmus shell</c> programs run as it.</summary>
    public const string LoginNode = "login";

    /// <summary>The site called <paramref name="name"/>, or null.</summary>
    public SiteSpec? FindSite(string name) => Sites.FirstOrDefault(s => s.Name == name);
}

/// <summary>The <c>[submit]</c> table: where the submission host's router listens.</summary>
/// <param name="Wan">Where the sites' routers reach it (host, and a port or null for any free one).</param>
/// <param name="Lan">Where the login node reaches it.</param>
public sealed record SubmitHostSpec(Endpoint Wan, Endpoint Lan);

/// <summary>A listening address in a personal-cluster file: a host and a port, or no port (any free port, chosen at <c>up</c>).</summary>
public readonly record struct Endpoint(string Host, int? Port)
{
    public override string ToString() => Port is { } p ? new HostPort(Host, p).ToString() : Host;
}

/// <summary>The personal job manager that runs across the personal nodes.</summary>
public enum ManagerKind
{
    /// <summary>No job manager: the nodes only join the overlay.</summary>
    None,

    /// <summary>A personal Slurm: slurmctld on the login node, <c>slurmd -Z</c> (a dynamic node) in every job proxy.</summary>
    Slurm,
}

/// <summary>The <c>[manager]</c> table.</summary>
/// <param name="Kind">Which job manager.</param>
/// <param name="Cpus">CPUs each personal node offers to the personal Slurm.</param>
public sealed record ManagerSpec(ManagerKind Kind, int Cpus);

/// <summary>How Isthmus reaches a site's head node.</summary>
public enum AccessKind
{
    /// <summary>The site is this machine: commands run as child processes.</summary>
    Local,

    /// <summary>Commands run on the head node over ssh.</summary>
    Ssh,
}

/// <summary>How job proxies are submitted at a site.</summary>
public enum SchedulerKind
{
    /// <summary>A fork on the head node (laptops, tests): the job id is the proxy's process id.</summary>
    Local,

    /// <summary>The site's Slurm: sbatch, squeue, scancel.</summary>
    Slurm,

    /// <summary>The site's (Son of) Grid Engine: qsub, qstat, qdel.</summary>
    Sge,
}

/// <summary>One <c>[sites.NAME]</c> table.</summary>
/// <param name="Name">The site name, a DNS label.</param>
/// <param name="Access">How the head node is reached.</param>
/// <param name="Ssh">The <c>[sites.NAME.ssh]</c> table when <paramref name="Access"/> is ssh.</param>
/// <param name="Scheduler">How job proxies are submitted.</param>
/// <param name="Partition">The site's partition (Slurm) or queue (Grid Engine) for job proxies, or null for the site's default.</param>
/// <param name="Walltime">The job proxies' walltime as the scheduler takes it (<c>HH:MM:SS</c>), or null for the site's default.</param>
/// <param name="SubmitOptions">Extra arguments for the submit command (e.g. <c>--account=x</c>).</param>
/// <param name="MinProxies">Proxies kept at the site while the cluster is up.</param>
/// <param name="MaxProxies">Proxies the elastic manager may grow the site to.</param>
/// <param name="Wan">Where the site's router listens for other routers.</param>
/// <param name="Lan">Where the site's router listens for its nodes.</param>
/// <param name="WorkDir">Where Isthmus keeps its files at the site (null: the default for the access kind).</param>
public sealed record SiteSpec(
    string Name,
    AccessKind Access,
    SshSpec? Ssh,
    SchedulerKind Scheduler,
    string? Partition,
    string? Walltime,
    IReadOnlyList<string> SubmitOptions,
    int MinProxies,
    int MaxProxies,
    Endpoint Wan,
    Endpoint Lan,
    string? WorkDir);

/// <summary>The <c>[sites.NAME.ssh]</c> table.</summary>
/// <param name="Host">The head node's host name or address.</param>
/// <param name="User">The user to log in as (null: ssh's default).</param>
/// <param name="Port">The ssh port.</param>
/// <param name="Identity">The private key file (null: ssh's default).</param>
/// <param name="Options">Extra <c>-o</c> options, like <c>StrictHostKeyChecking=accept-new</c>.</param>
public sealed record SshSpec(string Host, string? User, int Port, string? Identity, IReadOnlyList<string> Options)
{
    /// <summary>The ssh destination, <c>user@host</c> or <c>host</c>.</summary>
    public string Destination => User is null ? Host : $"{User}@{Host}";
}
