using System.Net;
using System.Net.Sockets;

namespace Isthmus.Core.Tests.Relay;

/// <summary>Connected loopback TCP pairs and read-to-end, for relay tests on real sockets.</summary>
internal static class LoopbackSockets
{
    public static async Task<(Socket Outer, Socket Inner)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var outer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await outer.ConnectAsync(listener.LocalEndPoint!);
        var inner = await listener.AcceptAsync();
        return (outer, inner);
    }

    public static async Task<byte[]> ReadToEndAsync(Socket socket, CancellationToken cancellationToken = default)
    {
        using var collected = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
        {
            collected.Write(buffer, 0, n);
        }

        return collected.ToArray();
    }
}
