using System.CommandLine;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Interpose;

namespace Isthmus.Cli.Commands;

/// <summary><c>isthmus resolve NAME|VIP</c>: what an interposed program's lookup would answer.</summary>
internal static class ResolveCommand
{
    public static Command Create()
    {
        var target = new Argument<string>("NAME|VIP") { Description = "A node name (NODE or NODE.SITE.CLUSTER) or a VIP." };
        var node = new Option<string?>("--node") { Description = "Ask this node's agent (default: the only agent running on this host)." };
        var command = new Command("resolve", "Resolve a node name to its VIP, or a VIP to its name, as interposed programs see them. Prints 'VIP NAME'; exit 1 if unknown.")
        {
            target, node,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var what = result.GetValue(target)!.Trim();
            var client = AgentClient.Find(result.GetValue(node));
            var answer = IPv4.TryParse(what, out var vip)
                ? await client.ResolveAddressAsync(vip, cancellationToken).ConfigureAwait(false)
                : what.Length is > 0 and <= 253 && what.All(c => c is > ' ' and < (char)0x7F)
                    ? await client.ResolveNameAsync(what, cancellationToken).ConfigureAwait(false)
                    : throw new UserException($"'{what}' is neither a host name nor an IPv4 address");
            if (answer.Error != 0 || answer.Name is null)
            {
                throw new UserException($"{what}: not found in cluster '{client.Agent.Cluster}'", 1);
            }

            Console.WriteLine($"{IPv4.Format(answer.Endpoint.Address == 0 ? vip : answer.Endpoint.Address)} {answer.Name}");
            return 0;
        });
        return command;
    }
}
