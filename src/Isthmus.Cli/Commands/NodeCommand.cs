using System.CommandLine;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Node;

namespace Isthmus.Cli.Commands;

/// <summary><c>isthmus node DIR --site SITE --name NODE</c>: enrols a node and serves its programs.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Cluster directory (shared with the site's router)." };
        var site = new Option<string>("--site") { Description = "The site this node belongs to.", Required = true };
        var name = new Option<string>("--name") { Description = "Node name (DNS label); the same name always gets the same VIP.", Required = true };
        var vip = new Option<string?>("--vip") { Description = "Ask for this VIP (refused if another node holds it)." };
        var socks = new Option<string?>("--socks") { Description = "Serve SOCKS5 (CONNECT, UDP ASSOCIATE; names resolved by the agent) on HOST:PORT, e.g. 127.0.0.1:1080, for programs of this user that cannot be interposed." };
        var logLevel = CommonOptions.LogLevelOption();
        var logFormat = CommonOptions.LogFormatOption();
        var command = new Command("node", "Enrol NODE with its site's router, print 'NODE VIP' when up, and serve interposed programs until SIGINT/SIGTERM.")
        {
            dir, site, name, vip, socks, logLevel, logFormat,
        };
        command.Subcommands.Add(RevokeCommand());
        command.SetAction(async (result, _) =>
        {
            using var logging = CommonOptions.CreateLogging(result, logLevel, logFormat);
            uint? requested = null;
            if (result.GetValue(vip) is { } vipText)
            {
                requested = IPv4.TryParse(vipText, out var v) ? v : throw new UserException($"--vip '{vipText}' is not an IPv4 address");
            }

            System.Net.IPEndPoint? socksEndpoint = null;
            if (result.GetValue(socks) is { } socksText)
            {
                socksEndpoint = HostPort.TryParse(socksText, out var hp, out var error) ? hp.ToIPEndPoint()
                    : throw new UserException($"--socks '{socksText}': {error}");
            }

            var nodeName = result.GetValue(name)!;
            using var agent = new NodeAgent(result.GetValue(dir)!, result.GetValue(site)!, nodeName, requested, logging, socksEndpoint);
            using var stop = CommonOptions.StopOnSignals(out var signals);
            using (signals)
            {
                await agent.RunAsync(v =>
                {
                    Console.Out.WriteLine($"{nodeName} {v}");
                    Console.Out.Flush();
                }, stop.Token).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    /// <summary><c>isthmus node revoke NODE</c>: cluster-wide, through one router (which tells the others).</summary>
    private static Command RevokeCommand()
    {
        var admin = new AdminOptions();
        var node = new Argument<string>("NODE") { Description = "The node: NODE (that name at every site) or NODE.SITE." };
        var command = new Command("revoke", "Revoke a node cluster-wide: its session and streams end, its name and key can no longer enrol, every router refuses its traffic.") { node };
        admin.AddTo(command);
        command.SetAction((result, ct) =>
        {
            var name = result.GetValue(node)!;
            var table = admin.Send(result, new Core.Wire.AdminRequest { Op = Core.Wire.AdminRequest.NodeRevoke, Nodes = [name] }, ct);
            result.InvocationConfiguration.Output.WriteLine($"revoked {name} (domain table version {table.Version})");
            return Task.FromResult(0);
        });
        return command;
    }
}
