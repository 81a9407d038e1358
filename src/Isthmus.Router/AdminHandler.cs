using System.Net;
using Isthmus.Core.Domains;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// Serves one administrative request on a control channel (the LAN port's TLS channel, which authenticates the
/// router to the CLI): checks the proof of the router secret over the router's nonce, applies the change to the
/// domain table (a new version, persisted and sent to every peer router) and answers with the resulting table.
/// </summary>
internal sealed class AdminHandler(RouterContext context, DomainState domains, ILogger logger)
{
    public async Task ServeAsync(ControlChannel channel, byte[] nonce, ControlMessage message, IPEndPoint remote, CancellationToken cancellationToken)
    {
        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(message.Proof ?? "");
        }
        catch (FormatException)
        {
            proof = [];
        }

        if (message.Request is null || !AdminRequest.VerifyProof(context.RouterSecret, nonce, message.Request, proof))
        {
            context.Metrics.LegRefused();
            logger.LogWarning("Refused admin request from {Remote}: the proof does not match this cluster's router secret", remote);
            await ErrorAsync(channel, "bad-secret", "the admin proof does not match this cluster's router secret (is this the cluster directory of this router?)", cancellationToken).ConfigureAwait(false);
            return;
        }

        AdminRequest request;
        try
        {
            request = AdminRequest.Parse(message.Request);
        }
        catch (ProtocolException e)
        {
            await ErrorAsync(channel, "bad-request", e.Message, cancellationToken).ConfigureAwait(false);
            return;
        }

        DomainTable table;
        try
        {
            table = Apply(request, remote);
        }
        catch (DomainChangeException e)
        {
            logger.LogInformation("Admin request {Op} from {Remote} not applied: {Reason}", request.Op, remote, e.Message);
            await ErrorAsync(channel, "bad-change", e.Message, cancellationToken).ConfigureAwait(false);
            return;
        }

        await channel.SendAsync(new ControlMessage { Type = ControlMessage.AdminResult, Table = DomainTableCodec.EncodeText(table) }, cancellationToken).ConfigureAwait(false);
    }

    private DomainTable Apply(AdminRequest request, IPEndPoint remote)
    {
        var nodes = request.Nodes ?? [];
        var domain = request.Domain ?? "";
        var why = $"{request.Op} from {remote.Address}";
        return request.Op switch
        {
            AdminRequest.List => domains.Current,
            AdminRequest.DomainCreate => domains.Apply(t => t.Create(domain), why),
            AdminRequest.DomainDelete => domains.Apply(t => t.Delete(domain, request.Drain), why),
            AdminRequest.DomainAdd => domains.Apply(t => t.Add(domain, [.. nodes]), why),
            AdminRequest.DomainRemove => domains.Apply(t => t.Remove(domain, [.. nodes], request.Drain), why),
            AdminRequest.NodeRevoke when nodes.Count == 1 => domains.Apply(t => t.Revoke(nodes[0]), why),
            _ => throw new DomainChangeException($"unknown admin request '{request.Op}' with {nodes.Count} nodes"),
        };
    }

    private static Task ErrorAsync(ControlChannel channel, string code, string message, CancellationToken cancellationToken) =>
        channel.SendAsync(new ControlMessage { Type = ControlMessage.Error, Code = code, Message = message }, cancellationToken);
}
