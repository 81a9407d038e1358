using System.CommandLine;
using System.Globalization;
using Isthmus.Cluster;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Config;
using Isthmus.Core.Security;

namespace Isthmus.Cli.Commands;

/// <summary>
/// <c>isthmus cluster new|add-site|show</c>: make a cluster directory, add sites to it, print its route table.
/// </summary>
internal static class ClusterCommands
{
    public static Command Create()
    {
        var command = new Command("cluster", "Make and inspect cluster directories (cluster file, CA, secrets, router certificates).");
        command.Subcommands.Add(NewCommand());
        command.Subcommands.Add(AddSiteCommand());
        command.Subcommands.Add(ShowCommand());
        command.Subcommands.Add(RenewRouterCommand());
        command.Subcommands.Add(RotateCaCommand());
        return command;
    }

    private static Command RenewRouterCommand()
    {
        var dir = new Argument<string>("DIR") { Description = "Cluster directory (made by 'isthmus cluster new')." };
        var site = new Argument<string>("SITE") { Description = "The site whose router gets a new certificate." };
        var command = new Command("renew-router", "Issue a new certificate (and key) for a site's router with the cluster CA; restart that router to use it.")
        {
            dir, site,
        };
        command.SetAction(result =>
        {
            var path = result.GetValue(dir)!;
            var siteName = result.GetValue(site)!;
            var until = ClusterCreator.RenewRouter(path, siteName);
            result.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"router certificate of site {siteName} renewed, valid until {until:yyyy-MM-dd}: {Path.Combine(path, "sites", siteName, "router.crt")}; restart the router of {siteName} to use it"));
            return 0;
        });
        return command;
    }

    private static Command RotateCaCommand()
    {
        var dir = new Argument<string>("DIR") { Description = "Cluster directory (made by 'isthmus cluster new')." };
        var secrets = new Option<bool>("--new-secrets") { Description = "Also replace enrol.secret and router.secret (do this if the directory was exposed)." };
        var command = new Command("rotate-ca", "Replace the cluster CA and reissue every router certificate with it; then restart every router and node agent.")
        {
            dir, secrets,
        };
        command.SetAction(result =>
        {
            var path = result.GetValue(dir)!;
            var sites = ClusterCreator.RotateCa(path, result.GetValue(secrets));
            var output = result.InvocationConfiguration.Output;
            output.WriteLine($"new cluster CA in {Path.Combine(path, "ca.crt")} (the old one kept as ca.crt.previous, ca.key.previous)");
            output.WriteLine(sites.Count == 0 ? "no router certificates to reissue (no sites yet)" : $"reissued router certificates: {string.Join(", ", sites)}");
            if (result.GetValue(secrets))
            {
                output.WriteLine("new enrol.secret and router.secret");
            }

            output.WriteLine("next: restart every router, then every node agent (each reads the CA and its certificate at start)");
            return 0;
        });
        return command;
    }

    private static Command NewCommand()
    {
        var dir = new Argument<string>("DIR") { Description = "Directory to create the cluster in (created if missing; must not hold a cluster)." };
        var network = new Option<string>("--network")
        {
            HelpName = "CIDR",
            Description = "Cluster network, prefix /16../28, e.g. 100.64.0.0/16. Every VIP comes from it.",
            Required = true,
        };
        var name = new Option<string>("--name")
        {
            HelpName = "NAME",
            Description = "Cluster name (a-z, 0-9, '-'); routers are named router.SITE.NAME.",
            DefaultValueFactory = _ => "isthmus",
        };
        var image = new Option<string?>("--image")
        {
            HelpName = "A.B.C.D",
            Description = $"Loopback image base in 127/8 where VIPs appear locally (default {IPv4.Format(VirtualNetwork.DefaultImageBase)}).",
        };
        var noWanEncryption = new Option<bool>("--no-wan-encryption")
        {
            Description = "Carry router-to-router legs in cleartext, authenticated by an HMAC header, instead of TLS 1.3.",
        };
        var command = new Command("new", "Create a cluster directory: cluster.toml, the cluster CA, enrol.secret and router.secret.")
        {
            dir, network, name, image, noWanEncryption,
        };
        command.SetAction(result =>
        {
            var path = result.GetValue(dir)!;
            var cidr = ParseCidr("--network", result.GetValue(network)!);
            var imageText = result.GetValue(image);
            uint? imageBase = imageText is null ? null
                : IPv4.TryParse(imageText, out var parsed) ? parsed
                : throw new UserException($"--image: '{imageText}' is not an IPv4 address (like 127.100.0.0)");
            var directory = ClusterCreator.New(path, cidr, result.GetValue(name)!, imageBase, !result.GetValue(noWanEncryption));

            var file = directory.LoadClusterFile();
            using var ca = directory.LoadCaCertificate();
            var output = result.InvocationConfiguration.Output;
            var c = file.Cluster;
            output.WriteLine($"made cluster '{c.Name}' (id {c.Id}) in {path}");
            WriteTable(output, [
                ["  cluster.toml", $"route table: network {c.Network}, loopback image {file.VirtualNetwork.ImageRange}, WAN legs {WanMode(c)}"],
                ["  ca.crt, ca.key", $"cluster CA, valid until {ca.NotAfter.ToUniversalTime():yyyy-MM-dd}; ca.key is private (0600)"],
                ["  enrol.secret", "what a node must hold to enrol (0600)"],
                ["  router.secret", "authenticates cleartext WAN legs (0600)"],
            ]);
            output.WriteLine($"next: isthmus cluster add-site {path} SITE --wan HOST:PORT --lan HOST:PORT");
            return 0;
        });
        return command;
    }

    private static Command AddSiteCommand()
    {
        var dir = new Argument<string>("DIR") { Description = "Cluster directory (made by 'isthmus cluster new')." };
        var site = new Argument<string>("SITE") { Description = "Site name (a-z, 0-9, '-')." };
        var wan = new Option<string>("--wan")
        {
            HelpName = "HOST:PORT",
            Description = "HOST:PORT where the other sites' routers reach this site's router.",
            Required = true,
        };
        var lan = new Option<string>("--lan")
        {
            HelpName = "HOST:PORT",
            Description = "HOST:PORT where this site's nodes reach its router.",
            Required = true,
        };
        var subnet = new Option<string?>("--subnet")
        {
            HelpName = "CIDR",
            Description = "The site's subnet of the cluster network (default: the next free /24, x.y.1.0/24 first).",
        };
        var command = new Command("add-site", "Add a site: allocate its subnet and issue its router certificate (sites/SITE/router.crt, router.key).")
        {
            dir, site, wan, lan, subnet,
        };
        command.SetAction(result =>
        {
            var path = result.GetValue(dir)!;
            var siteName = result.GetValue(site)!;
            var wanAddress = ParseHostPort("--wan", result.GetValue(wan)!);
            var lanAddress = ParseHostPort("--lan", result.GetValue(lan)!);
            var subnetText = result.GetValue(subnet);
            IPv4Cidr? chosen = subnetText is null ? null : ParseCidr("--subnet", subnetText);
            var added = ClusterCreator.AddSite(path, siteName, wanAddress, lanAddress, chosen);

            var file = new ClusterDirectory(path).LoadClusterFile();
            var output = result.InvocationConfiguration.Output;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"site {added.Name}: subnet {added.Subnet}, router {IPv4.Format(added.RouterAddress)}, "
                + $"nodes {IPv4.Format(added.FirstNodeAddress)}..{IPv4.Format(added.LastNodeAddress)}, wan {added.Wan}, lan {added.Lan}"));
            output.WriteLine($"  router certificate {Path.Combine(path, "sites", added.Name, "router.crt")} "
                + $"({ClusterCa.RouterDnsName(added.Name, file.Cluster.Name)}), key router.key (0600)");
            return 0;
        });
        return command;
    }

    private static Command ShowCommand()
    {
        var dir = new Argument<string>("DIR") { Description = "Cluster directory (made by 'isthmus cluster new')." };
        var command = new Command("show", "Print the cluster's route table.") { dir };
        command.SetAction(result =>
        {
            var path = result.GetValue(dir)!;
            var file = new ClusterDirectory(path).LoadClusterFile();
            var output = result.InvocationConfiguration.Output;
            var c = file.Cluster;
            output.WriteLine($"cluster {c.Name} (id {c.Id}): network {c.Network}, loopback image {file.VirtualNetwork.ImageRange}, WAN legs {WanMode(c)}");
            if (file.Sites.Count == 0)
            {
                output.WriteLine($"no sites yet: add one with 'isthmus cluster add-site {path} SITE --wan HOST:PORT --lan HOST:PORT'");
                return 0;
            }

            List<string[]> rows = [["SITE", "SUBNET", "ROUTER", "WAN", "LAN"]];
            rows.AddRange(file.Sites.Select(s => new[]
            {
                s.Name, s.Subnet.ToString(), IPv4.Format(s.RouterAddress), s.Wan.ToString(), s.Lan.ToString(),
            }));
            WriteTable(output, rows);
            return 0;
        });
        return command;
    }

    private static string WanMode(ClusterSettings cluster) =>
        cluster.WanEncryption ? "TLS 1.3 (mutual, router certificates)" : "cleartext, HMAC-authenticated";

    private static IPv4Cidr ParseCidr(string option, string text) =>
        IPv4Cidr.TryParse(text, out var cidr, out var error) ? cidr : throw new UserException($"{option}: {error}");

    private static HostPort ParseHostPort(string option, string text) =>
        HostPort.TryParse(text, out var hostPort, out var error) ? hostPort : throw new UserException($"{option}: {error}");

    // Left-aligned columns two spaces apart; the last column is not padded.
    private static void WriteTable(TextWriter output, IReadOnlyList<string[]> rows)
    {
        var columns = rows.Max(r => r.Length);
        var widths = Enumerable.Range(0, columns).Select(i => rows.Max(r => i < r.Length ? r[i].Length : 0)).ToArray();
        foreach (var row in rows)
        {
            var cells = row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]));
            output.WriteLine(string.Join("  ", cells).TrimEnd());
        }
    }
}
