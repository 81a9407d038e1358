using Isthmus.Core.Addressing;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;

namespace Isthmus.Node.Socks;

/// <summary>
/// What the SOCKS5 server needs from its node agent: who this node is on the overlay, the directory's names,
/// and the two ways out (a stream leg, a datagram). The agent implements it; the server never touches the
/// router link itself, so it can be tested against real local sockets standing in for the overlay.
/// </summary>
/// <remarks>
/// The server handles the node's own VIP itself, as the shim does (straight to the loopback image, no agent
/// hop), so <see cref="DialAsync"/> and <see cref="SendDatagram"/> are only called for other VIPs. Inbound
/// datagrams do not pass through this interface: the agent delivers an overlay datagram for own VIP:port to
/// image(own VIP):port from a socket bound to image(sender VIP):sender port, exactly as for any program, and
/// the server's association socket is bound there.
/// </remarks>
internal interface ISocksOverlay
{
    /// <summary>This node's VIP (host order). Changes never while the server runs (a name keeps its VIP).</summary>
    uint Vip { get; }

    /// <summary>The cluster's address plan: which addresses are VIPs, and the VIP ↔ loopback image translation.</summary>
    VirtualNetwork Network { get; }

    /// <summary>
    /// Resolves a node name the way the shim's RESOLVE_NAME does (NODE, NODE.SITE.CLUSTER, case-insensitive,
    /// trailing dot allowed) from the agent's local copy of the directory; no network round trip.
    /// </summary>
    bool TryResolve(string name, out uint vip);

    /// <summary>
    /// Opens a stream through the overlay from <paramref name="source"/> (own VIP and a port the server holds
    /// for the stream's lifetime) to <paramref name="destination"/> (another VIP). The result carries a
    /// connected endpoint when <see cref="LegDialResult.Status"/> is <see cref="LegStatus.Ok"/>, else the
    /// end-to-end status (what a blocking connect would have reported). Bounded in time by the agent.
    /// </summary>
    Task<LegDialResult> DialAsync(VirtualEndpoint source, VirtualEndpoint destination, CancellationToken cancellationToken);

    /// <summary>
    /// Hands one datagram to the overlay's datagram leg, with UDP semantics: fire and forget, no error
    /// reported (a full queue or an unknown destination drops it). Must not block.
    /// </summary>
    void SendDatagram(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload);
}
