using Isthmus.Core.Addressing;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;
using Isthmus.Node.Socks;

namespace Isthmus.Node;

/// <summary>What the SOCKS5 server needs from the agent: its VIP, names, streams and datagrams into the overlay.</summary>
internal sealed class AgentSocksOverlay(NodeAgent agent) : ISocksOverlay
{
    public uint Vip => agent.CurrentVip;

    public VirtualNetwork Network => agent.Network;

    public bool TryResolve(string name, out uint vip)
    {
        var found = agent.Directory.TryResolve(name, agent.SiteName, out var entry);
        vip = found ? entry.Vip : 0;
        return found;
    }

    public Task<LegDialResult> DialAsync(VirtualEndpoint source, VirtualEndpoint destination, CancellationToken cancellationToken) =>
        agent.DialStreamAsync(source.Port, destination, cancellationToken);

    public void SendDatagram(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload) =>
        agent.SendDatagram(source, destination, payload);
}
