using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Addressing;

namespace Isthmus.Node.Socks;

/// <summary>
/// Holds the overlay source port of one SOCKS stream: a TCP socket bound to image(own VIP):0 with the port
/// the kernel chose.
/// </summary>
/// <remarks>
/// Why a real socket and not a counter of our own: the kernel is the allocator the shim's programs use too
/// (they bind image(own VIP):0 before connect), so a SOCKS stream can never share VIP:port with a program's
/// stream or another SOCKS stream, and the far end never sees two connections from one VIP:port. The cost
/// is one descriptor per stream. SO_REUSEADDR as in the shim: when the destination is on this host its
/// agent binds image(own VIP):port to connect "from" us, and that bind must succeed beside ours. For a
/// CONNECT to the own VIP the socket itself connects to the image, as the shim would.
/// </remarks>
internal sealed class SourcePortReservation : IDisposable
{
    private SourcePortReservation(Socket socket, ushort port)
    {
        Socket = socket;
        Port = port;
    }

    public Socket Socket { get; }

    public ushort Port { get; }

    /// <exception cref="SocketException">No port could be bound (exhausted, or the image is not local).</exception>
    public static SourcePortReservation Bind(VirtualNetwork network, uint vip)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPv4.ToIPAddress(network.ToImage(vip)), 0));
            return new SourcePortReservation(socket, (ushort)((IPEndPoint)socket.LocalEndPoint!).Port);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => Socket.Dispose();
}
