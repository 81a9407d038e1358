using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Addressing;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;
using Isthmus.Node.Socks;

namespace Isthmus.Node.Tests.Socks;

/// <summary>
/// An overlay made of real loopback sockets, doing what the agents do on one host. DialAsync connects from
/// image(source VIP):source port to image(destination VIP):port, as the destination agent does, so a
/// refusal is the kernel's. SendDatagram sends a real UDP frame ([u32 src vip][u16 port][u32 dst vip][u16
/// port][payload], the datagram leg's layout) to a socket that stands in for the router.
/// </summary>
internal sealed class LoopbackOverlay : ISocksOverlay, IDisposable
{
    public static readonly VirtualNetwork Plan = new(VirtualNetwork.DefaultNetwork);
    private readonly Dictionary<string, uint> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly Socket _sender = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);

    public LoopbackOverlay(uint vip)
    {
        Vip = vip;
        Router = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        Router.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    }

    public uint Vip { get; }

    public VirtualNetwork Network => Plan;

    /// <summary>The router's stand-in: every datagram the server hands to the overlay arrives here.</summary>
    public Socket Router { get; }

    public ConcurrentQueue<(VirtualEndpoint Source, VirtualEndpoint Destination)> Dials { get; } = new();

    public void AddName(string name, uint vip) => _names[name.TrimEnd('.')] = vip;

    public bool TryResolve(string name, out uint vip) => _names.TryGetValue(name.TrimEnd('.'), out vip);

    public async Task<LegDialResult> DialAsync(VirtualEndpoint source, VirtualEndpoint destination, CancellationToken cancellationToken)
    {
        Dials.Enqueue((source, destination));
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPv4.ToIPAddress(Plan.ToImage(source.Address)), source.Port));
            await socket.ConnectAsync(new IPEndPoint(IPv4.ToIPAddress(Plan.ToImage(destination.Address)), destination.Port), cancellationToken);
            return new LegDialResult(LegStatus.Ok, new RelayEndpoint(socket), "");
        }
        catch (SocketException e)
        {
            socket.Dispose();
            return new LegDialResult(LegStatusErrno.FromSocketError(e.SocketErrorCode), null, e.SocketErrorCode.ToString());
        }
    }

    public void SendDatagram(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[12 + payload.Length];
        WriteEndpoint(frame, source);
        WriteEndpoint(frame.AsSpan(6), destination);
        payload.CopyTo(frame.AsSpan(12));
        _sender.SendTo(frame, Router.LocalEndPoint!);
    }

    /// <summary>Reads the next datagram the server handed to the overlay.</summary>
    public async Task<(VirtualEndpoint Source, VirtualEndpoint Destination, byte[] Payload)> NextDatagramAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[70000];
        var n = await Router.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
        return (ReadEndpoint(buffer), ReadEndpoint(buffer.AsSpan(6)), buffer[12..n]);
    }

    public void Dispose()
    {
        Router.Dispose();
        _sender.Dispose();
    }

    private static void WriteEndpoint(Span<byte> to, VirtualEndpoint endpoint)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(to, endpoint.Address);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(to[4..], endpoint.Port);
    }

    private static VirtualEndpoint ReadEndpoint(ReadOnlySpan<byte> from) =>
        new(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(from), System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(from[4..]));
}
