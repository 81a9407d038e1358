using System.CommandLine;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Domains;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;
using Isthmus.Router;

namespace Isthmus.Cli.Commands;

/// <summary>
/// What the admin commands (<c>isthmus domain …</c>, <c>isthmus node revoke</c>) share: which cluster directory
/// holds the router secret, which router to ask, and how a domain table is printed.
/// </summary>
internal sealed class AdminOptions
{
    public Option<string?> Cluster { get; } = new("--cluster")
    {
        HelpName = "DIR",
        Description = "Cluster directory holding cluster.toml, ca.crt and router.secret (default $ISTHMUS_CLUSTER_DIR, else the current directory).",
    };

    public Option<string?> Site { get; } = new("--site")
    {
        Description = "Ask this site's router (default: the first site of the cluster file); it passes the change on to every other router.",
    };

    public Option<string?> Router { get; } = new("--router")
    {
        HelpName = "HOST:PORT",
        Description = "Reach the router here instead of the site's lan address (e.g. through a tunnel).",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Cluster);
        command.Options.Add(Site);
        command.Options.Add(Router);
    }

    /// <summary>Sends the request to the chosen router and returns the table it answers with.</summary>
    public DomainTable Send(ParseResult result, AdminRequest request, CancellationToken cancellationToken)
    {
        var path = result.GetValue(Cluster) ?? Environment.GetEnvironmentVariable("ISTHMUS_CLUSTER_DIR") ?? Directory.GetCurrentDirectory();
        var directory = new ClusterDirectory(path);
        var file = directory.LoadClusterFile();
        var siteName = result.GetValue(Site);
        var site = siteName is null
            ? (file.Sites.Count > 0 ? file.Sites[0] : null) ?? throw new UserException($"{directory.ClusterFilePath} has no sites, so there is no router to ask")
            : file.FindSite(siteName) ?? throw new UserException($"--site: no site '{siteName}' in {directory.ClusterFilePath} (sites: {string.Join(", ", file.Sites.Select(s => s.Name))})");
        HostPort? endpoint = null;
        if (result.GetValue(Router) is { } text)
        {
            endpoint = HostPort.TryParse(text, out var hp, out var error) ? hp : throw new UserException($"--router '{text}': {error}");
        }

        return RouterAdminClient.SendAsync(directory, site, endpoint, request, cancellationToken).GetAwaiter().GetResult();
    }

    /// <summary>The table as people read it: one line per domain, then revocations.</summary>
    public static void Write(TextWriter output, DomainTable table)
    {
        output.WriteLine($"domain table version {table.Version}");
        var width = table.Names.Select(n => n.Length).DefaultIfEmpty(0).Max();
        foreach (var name in table.Names)
        {
            var members = table.MembersOf(name);
            output.WriteLine($"  {name.PadRight(width)}  {(members.Count == 0 ? "(no nodes)" : string.Join(" ", members))}");
        }

        if (table.Names.Count == 0)
        {
            output.WriteLine("  (no domains: no two nodes may talk)");
        }

        if (table.Revoked.Count > 0)
        {
            output.WriteLine($"revoked: {string.Join(" ", table.Revoked)}");
        }
    }
}
