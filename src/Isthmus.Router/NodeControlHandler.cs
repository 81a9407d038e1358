using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// A node's control channel: challenge, enrolment, keepalive, leave. The channel is the lease: when it
/// ends (or stays silent past the lease), the node is no longer reachable, but its name keeps its VIP.
/// The same channel, answered with an <c>admin</c> message instead of <c>enrol</c>, carries one admin request.
/// </summary>
internal sealed class NodeControlHandler(RouterContext context, RouterDirectory directory, DomainState domains, AdminHandler admin, ILogger logger)
{
    private readonly Core.Logging.RateLimitedLog _offenders = new(logger);

    /// <param name="authenticated">Called once the node has enrolled (ends the listener's handshake deadline).</param>
    public async Task RunAsync(Socket socket, SslStream tls, Action? authenticated, CancellationToken cancellationToken)
    {
        var remote = (IPEndPoint)socket.RemoteEndPoint!;
        await using var channel = new ControlChannel(tls, ControlChannel.MaxNodeFrame);
        NodeSession? session = null;
        var reason = "control channel closed";
        try
        {
            session = await EnrolAsync(channel, remote, cancellationToken).ConfigureAwait(false);
            if (session is null)
            {
                return;
            }

            authenticated?.Invoke();

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Ended.Token);
            _ = PushDirectoryAsync(channel, session, linked.Token);
            while (true)
            {
                using var lease = CancellationTokenSource.CreateLinkedTokenSource(linked.Token);
                lease.CancelAfter(NodeSession.LeaseTimeout);
                ControlMessage? message;
                try
                {
                    message = await channel.ReceiveAsync(lease.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    reason = "lease expired (no keepalive)";
                    return;
                }

                switch (message?.Type)
                {
                    case null:
                        return;
                    case ControlMessage.Ping:
                        await channel.SendAsync(new ControlMessage { Type = ControlMessage.Pong }, linked.Token).ConfigureAwait(false);
                        break;
                    case ControlMessage.Leave:
                        reason = "left";
                        return;
                    case ControlMessage.Direct:
                        await channel.SendAsync(GrantDirect(session, message), linked.Token).ConfigureAwait(false);
                        break;
                    default:
                        throw new ProtocolException($"unexpected control message '{message.Type}'");
                }
            }
        }
        catch (Exception e) when (e is ProtocolException or IOException or SocketException or OperationCanceledException)
        {
            reason = e is not OperationCanceledException ? e.Message
                : cancellationToken.IsCancellationRequested ? "router stopping" : "timed out";
            if (e is ProtocolException)
            {
                context.Metrics.HandshakeFailed();
                _offenders.Warning("Node control channel from {Remote} closed: {Reason}", remote, e.Message);
            }
            else if (session is null && e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                context.Metrics.HandshakeFailed();
                _offenders.Warning("Node control channel from {Remote} closed: no enrolment within {Seconds:0} s", remote, context.HeaderTimeout.TotalSeconds);
            }
        }
        finally
        {
            if (session is not null)
            {
                context.Registry.End(session, reason);
            }
        }
    }

    /// <summary>
    /// Sends the cluster directory now and again after every change of it or of the domain table, coalescing
    /// bursts (a hundred nodes joining cost a handful of pushes, each with the latest snapshot). Ends with the
    /// channel. A node is shown only the nodes it shares a domain with (and itself): names outside its domains
    /// do not resolve.
    /// </summary>
    private async Task PushDirectoryAsync(ControlChannel channel, NodeSession session, CancellationToken cancellationToken)
    {
        using var changed = new SemaphoreSlim(1, 1);
        void Signal()
        {
            try
            {
                changed.Release();
            }
            catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException)
            {
                // A push is already due (or the channel is gone): nothing to add.
            }
        }

        void DomainsChanged(Core.Domains.DomainTable previous, Core.Domains.DomainTable current) => Signal();
        directory.Changed += Signal;
        domains.Changed += DomainsChanged;
        try
        {
            var self = new Core.Domains.NodeRef(session.Name, context.Site.Name);
            while (true)
            {
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
                var snapshot = directory.Snapshot;
                var table = domains.Current;
                var visible = snapshot.Entries.Where(e => e.Vip == session.Vip || table.Shares(self, new Core.Domains.NodeRef(e.Name, e.Site)));
                await channel.SendAsync(new ControlMessage { Type = ControlMessage.Directory, Nodes = Core.Naming.DirectoryCodec.ToWire(visible) }, cancellationToken).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // The channel ended; the control loop reports why.
        }
        catch (Exception e)
        {
            logger.LogWarning("Directory push to node {Node} stopped: {Error}", session.Name, e.Message);
        }
        finally
        {
            directory.Changed -= Signal;
            domains.Changed -= DomainsChanged;
        }
    }

    private async Task<NodeSession?> EnrolAsync(ControlChannel channel, IPEndPoint remote, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(context.HeaderTimeout);
        var nonce = RandomNumberGenerator.GetBytes(32);
        await channel.SendAsync(new ControlMessage { Type = ControlMessage.Challenge, Nonce = Convert.ToBase64String(nonce) }, deadline.Token).ConfigureAwait(false);
        var enrol = await channel.ReceiveAsync(deadline.Token).ConfigureAwait(false);
        if (enrol is null)
        {
            return null;
        }

        if (enrol.Type == ControlMessage.Admin)
        {
            await admin.ServeAsync(channel, nonce, enrol, remote, deadline.Token).ConfigureAwait(false);
            return null;
        }

        if (enrol.Type != ControlMessage.Enrol || enrol.Name is null || enrol.PublicKey is null || enrol.Proof is null || enrol.Signature is null || enrol.DataEndpoint is null)
        {
            await RefuseAsync(channel, remote, enrol.Name, "bad-request", "expected an enrol message with name, spki, proof, signature and data endpoint", cancellationToken).ConfigureAwait(false);
            return null;
        }

        if (!NodeNames.IsValid(enrol.Name))
        {
            await RefuseAsync(channel, remote, enrol.Name, "bad-name", $"'{enrol.Name}' is not a valid node name (DNS label: a-z, 0-9, '-', 1..63 characters)", cancellationToken).ConfigureAwait(false);
            return null;
        }

        byte[] spki, proof, signature;
        try
        {
            spki = Convert.FromBase64String(enrol.PublicKey);
            proof = Convert.FromBase64String(enrol.Proof);
            signature = Convert.FromBase64String(enrol.Signature);
        }
        catch (FormatException)
        {
            await RefuseAsync(channel, remote, enrol.Name, "bad-request", "fields are not base64", cancellationToken).ConfigureAwait(false);
            return null;
        }

        if (!EnrolmentProof.VerifySecretProof(context.EnrolSecret, nonce, enrol.Name, spki, proof))
        {
            await RefuseAsync(channel, remote, enrol.Name, "bad-secret", "the enrol proof does not match this cluster's enrol secret (is the node using the right cluster directory?)", cancellationToken).ConfigureAwait(false);
            return null;
        }

        if (!EnrolmentProof.VerifyNonceSignature(spki, nonce, signature))
        {
            await RefuseAsync(channel, remote, enrol.Name, "bad-signature", "the node key signature does not verify", cancellationToken).ConfigureAwait(false);
            return null;
        }

        // Checked after both proofs, so that only a holder of the enrol secret and of the key learns it is revoked.
        var table = domains.Current;
        if (table.IsRevoked(new Core.Domains.NodeRef(enrol.Name, context.Site.Name)) || table.IsKeyRevoked(enrol.PublicKey))
        {
            await RefuseAsync(channel, remote, enrol.Name, "revoked", $"node '{enrol.Name}' or its key is revoked in this cluster ('isthmus node revoke')", cancellationToken).ConfigureAwait(false);
            return null;
        }

        if (!ushort.TryParse(enrol.DataEndpoint, out var dataPort) || dataPort == 0)
        {
            await RefuseAsync(channel, remote, enrol.Name, "bad-request", "data endpoint must be a port number", cancellationToken).ConfigureAwait(false);
            return null;
        }

        uint? requestedVip = null;
        if (enrol.Vip is not null)
        {
            if (!IPv4.TryParse(enrol.Vip, out var want))
            {
                await RefuseAsync(channel, remote, enrol.Name, "bad-request", $"'{enrol.Vip}' is not an IPv4 address", cancellationToken).ConfigureAwait(false);
                return null;
            }

            requestedVip = want;
        }

        // The router reaches the agent at the address the control channel came from: a node cannot point
        // the router's legs at some other host.
        var outcome = context.Registry.Enrol(enrol.Name, spki, new IPEndPoint(remote.Address, dataPort), requestedVip);
        if (outcome.Session is null)
        {
            await RefuseAsync(channel, remote, enrol.Name, outcome.Code, outcome.Message, cancellationToken).ConfigureAwait(false);
            return null;
        }

        var session = outcome.Session;
        if (enrol.DirectPort is int directPort and > 0 and <= ushort.MaxValue)
        {
            session.DirectEndpoint = new IPEndPoint(remote.Address, directPort);
        }

        if (domains.Current.IsRevoked(new Core.Domains.NodeRef(session.Name, context.Site.Name)))
        {
            // Revoked while we enrolled it: the revocation's sweep ran before this session existed.
            context.Registry.End(session, "revoked");
            await RefuseAsync(channel, remote, enrol.Name, "revoked", $"node '{enrol.Name}' is revoked in this cluster ('isthmus node revoke')", cancellationToken).ConfigureAwait(false);
            return null;
        }

        await channel.SendAsync(new ControlMessage
        {
            Type = ControlMessage.Enrolled,
            Name = session.Name,
            Vip = IPv4.Format(session.Vip),
            SessionId = session.Id,
            SessionKey = Convert.ToBase64String(session.Key),
            LeaseSeconds = (int)NodeSession.LeaseTimeout.TotalSeconds,
            DirectGrants = context.Cluster.Cluster.DirectLan ? true : null,
        }, cancellationToken).ConfigureAwait(false);
        logger.LogInformation("Node {Node} enrolled from {Remote}: VIP {Vip}", session.Name, remote.Address, IPv4.Format(session.Vip));
        return session;
    }

    /// <summary>
    /// Answers a node's <c>direct</c> request: a grant only for a destination of this site that is up, announced a
    /// direct listener and shares a domain with the asker (neither revoked). The grant is the leg header this
    /// router would itself send to the destination agent, keyed by that agent's session key, of kind
    /// DirectStream, so that the agent verifies it as it verifies the router's own legs (MAC, session, freshness,
    /// one use). Any other answer sends the node down the router path, which reports the refusal's errno.
    /// </summary>
    private ControlMessage GrantDirect(NodeSession session, ControlMessage request)
    {
        string code;
        if (!context.Cluster.Cluster.DirectLan)
        {
            code = "off";
        }
        else if (request.Vip is null || !IPv4.TryParse(request.Vip, out var dst) || request.Port is not (int port and > 0 and <= ushort.MaxValue))
        {
            code = "bad-request";
        }
        else if (!context.Registry.TryGetLive(dst, out var target) || target.DirectEndpoint is null || target.Vip == session.Vip)
        {
            code = "no-direct";
        }
        else if (!domains.Current.Shares(Identify(session.Vip), Identify(dst)))
        {
            code = "forbidden";
        }
        else
        {
            var header = new LegHeader(LegKind.DirectStream, 0, Guid.NewGuid(), new VirtualEndpoint(session.Vip, 0), new VirtualEndpoint(dst, (ushort)port),
                DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), target.Id).ToBytes(target.Key);
            context.Metrics.DirectGranted();
            return new ControlMessage { Type = ControlMessage.DirectGrant, Id = request.Id, Code = "ok", Endpoint = target.DirectEndpoint.ToString(), Header = Convert.ToBase64String(header) };
        }

        context.Metrics.DirectNotGranted();
        logger.LogDebug("No direct grant for {Node} -> {Dst}:{Port}: {Code}", session.Name, request.Vip, request.Port, code);
        return new ControlMessage { Type = ControlMessage.DirectGrant, Id = request.Id, Code = code };
    }

    private Core.Domains.NodeRef Identify(uint vip) =>
        directory.Snapshot.TryReverse(vip, out var entry) ? new Core.Domains.NodeRef(entry.Name, entry.Site) : Core.Domains.NodeRef.Unknown;

    private async Task RefuseAsync(ControlChannel channel, IPEndPoint remote, string? name, string code, string message, CancellationToken cancellationToken)
    {
        _offenders.Warning("Refused enrolment of {Node} from {Remote}: {Code}: {Message}", name ?? "?", remote, code, message);
        await channel.SendAsync(new ControlMessage { Type = ControlMessage.Error, Code = code, Message = message }, cancellationToken).ConfigureAwait(false);
    }
}
