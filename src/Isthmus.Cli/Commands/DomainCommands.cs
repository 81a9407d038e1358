using System.CommandLine;
using Isthmus.Core.Domains;
using Isthmus.Core.Wire;

namespace Isthmus.Cli.Commands;

/// <summary>
/// <c>isthmus domain create|add|remove|delete|list</c>: change and show the cluster's communication domains at
/// run time. Each asks one router (authenticated with the router secret); it applies the change as a new version,
/// persists it and sends it to every other router, which apply it to new connections and datagrams at once.
/// </summary>
internal static class DomainCommands
{
    public static Command Create()
    {
        var command = new Command("domain", "Change and list communication domains (sets of nodes that may talk to one another) while the cluster runs.");
        command.Subcommands.Add(Change("create", "Create an empty domain NAME.", withNodes: false, withDrain: false,
            (name, _, _) => new AdminRequest { Op = AdminRequest.DomainCreate, Domain = name }));
        command.Subcommands.Add(Change("add", "Add nodes to domain NAME (NODE, NODE.SITE or '*' for every node).", withNodes: true, withDrain: false,
            (name, nodes, _) => new AdminRequest { Op = AdminRequest.DomainAdd, Domain = name, Nodes = nodes }));
        command.Subcommands.Add(Change("remove", "Remove nodes from domain NAME; their established streams into it are reset (unless --drain).", withNodes: true, withDrain: true,
            (name, nodes, drain) => new AdminRequest { Op = AdminRequest.DomainRemove, Domain = name, Nodes = nodes, Drain = drain }));
        command.Subcommands.Add(Change("delete", "Delete domain NAME; streams only it allowed are reset (unless --drain).", withNodes: false, withDrain: true,
            (name, _, drain) => new AdminRequest { Op = AdminRequest.DomainDelete, Domain = name, Drain = drain }));
        command.Subcommands.Add(List());
        return command;
    }

    private static Command Change(string verb, string description, bool withNodes, bool withDrain, Func<string, string[], bool, AdminRequest> request)
    {
        var admin = new AdminOptions();
        var name = new Argument<string>("NAME") { Description = "Domain name (a-z, 0-9, '-')." };
        var nodes = new Argument<string[]>("NODE") { Description = "Nodes: NODE (that name at any site), NODE.SITE, or '*' (every node).", Arity = ArgumentArity.OneOrMore };
        var drain = new Option<bool>("--drain") { Description = "Let established streams that the change forbids run until they end, instead of resetting them." };
        var command = new Command(verb, description) { name };
        if (withNodes)
        {
            command.Arguments.Add(nodes);
        }

        if (withDrain)
        {
            command.Options.Add(drain);
        }

        admin.AddTo(command);
        command.SetAction((result, ct) =>
        {
            var table = admin.Send(result, request(result.GetValue(name)!, withNodes ? result.GetValue(nodes)! : [], withDrain && result.GetValue(drain)), ct);
            AdminOptions.Write(result.InvocationConfiguration.Output, table);
            return Task.FromResult(0);
        });
        return command;
    }

    private static Command List()
    {
        var admin = new AdminOptions();
        var json = new Option<bool>("--json") { Description = "Print the table as the routers hold it (JSON)." };
        var command = new Command("list", "Print the domains and revoked nodes as a router holds them now.") { json };
        admin.AddTo(command);
        command.SetAction((result, ct) =>
        {
            var table = admin.Send(result, new AdminRequest { Op = AdminRequest.List }, ct);
            var output = result.InvocationConfiguration.Output;
            if (result.GetValue(json))
            {
                output.WriteLine(DomainTableCodec.EncodeText(table));
            }
            else
            {
                AdminOptions.Write(output, table);
            }

            return Task.FromResult(0);
        });
        return command;
    }
}
