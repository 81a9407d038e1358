using System.Net.Sockets;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Naming;
using Isthmus.Core.Wire;

namespace Isthmus.Interpose.Seccomp;

/// <summary>What the supervisor needs to know about its node agent (the preload shim gets the same from ISTHMUS_* variables).</summary>
public sealed class OverlayConfig
{
    private static readonly TimeSpan RpcTimeout = TimeSpan.FromSeconds(120); // a blocking CONNECT waits while the agent dials

    public OverlayConfig(AgentInfo agent)
    {
        OwnVip = IPv4.Parse(agent.Vip);
        Network = new VirtualNetwork(IPv4Cidr.Parse(agent.Network), IPv4.Parse(agent.Image));
        var data = HostPort.Parse(agent.DataEndpoint);
        DataIp = IPv4.Parse(data.Host);
        DataPort = (ushort)data.Port;
        AgentSocket = agent.SocketPath;
        if (agent.Dns is not null)
        {
            var dns = HostPort.Parse(agent.Dns);
            DnsIp = IPv4.Parse(dns.Host);
            DnsPort = (ushort)dns.Port;
        }

        NameServers = ResolverConfig.ReadNameServers();
    }

    public uint OwnVip { get; }

    public VirtualNetwork Network { get; }

    public uint DataIp { get; }

    public ushort DataPort { get; }

    public string AgentSocket { get; }

    /// <summary>The agent's DNS responder; port 0 when the agent has none (an older agent).</summary>
    public uint DnsIp { get; }

    public ushort DnsPort { get; }

    /// <summary>The name servers of resolv.conf as the program sees them: its queries to them go to the responder.</summary>
    public IReadOnlyList<uint> NameServers { get; }

    /// <summary>
    /// One request on a fresh control connection, as the shim's agent_rpc does. Returns the agent's answer, or
    /// null with <paramref name="errno"/> = ENETUNREACH (agent absent or nonsense) or ETIMEDOUT.
    /// </summary>
    public ShimResponse? Ask(ShimRequest request, out int errno)
    {
        errno = 0;
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
            socket.SendTimeout = (int)RpcTimeout.TotalMilliseconds;
            socket.ReceiveTimeout = (int)RpcTimeout.TotalMilliseconds;
            socket.Connect(new UnixDomainSocketEndPoint(AgentSocket));
            Span<byte> bytes = stackalloc byte[ShimRequest.Size + ShimRequest.MaxPayload];
            request.Write(bytes);
            socket.Send(bytes[..request.Length]);
            Span<byte> answer = stackalloc byte[ShimResponse.Size + ShimResponse.MaxPayload];
            var n = socket.Receive(answer);
            if (ShimResponse.TryParse(answer[..n], out var response) && response.Error is >= 0 and <= 4095)
            {
                return response;
            }

            errno = SeccompNative.ENETUNREACH;
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            errno = SeccompNative.ETIMEDOUT;
            return null;
        }
        catch (SocketException)
        {
            errno = SeccompNative.ENETUNREACH;
            return null;
        }
    }
}
