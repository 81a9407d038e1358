using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Isthmus.Node.Tests.Socks;

/// <summary>
/// A TCP echo server on a node's loopback image (as a program bound to its VIP would be). It echoes until
/// the client's FIN, then half-closes, and records each client's address as accept saw it.
/// </summary>
internal sealed class EchoListener : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();

    public EchoListener(IPAddress address)
    {
        _listener.Bind(new IPEndPoint(address, 0));
        _listener.Listen(16);
        _ = AcceptAsync();
    }

    public ushort Port => (ushort)((IPEndPoint)_listener.LocalEndPoint!).Port;

    public ConcurrentQueue<IPEndPoint> Peers { get; } = new();

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            Peers.Enqueue((IPEndPoint)client.RemoteEndPoint!);
            _ = EchoAsync(client);
        }
    }

    private static async Task EchoAsync(Socket client)
    {
        using (client)
        {
            try
            {
                var buffer = new byte[16384];
                int n;
                while ((n = await client.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                {
                    await client.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
                }

                client.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
            }
        }
    }
}
