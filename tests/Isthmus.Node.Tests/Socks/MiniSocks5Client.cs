using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Isthmus.Node.Tests.Socks;

/// <summary>A SOCKS5 client that writes RFC 1928 frames byte by byte, with no library in between.</summary>
internal sealed class MiniSocks5Client : IDisposable
{
    private readonly CancellationToken _cancellationToken;

    private MiniSocks5Client(Socket socket, CancellationToken cancellationToken)
    {
        Socket = socket;
        _cancellationToken = cancellationToken;
    }

    public Socket Socket { get; }

    public static async Task<MiniSocks5Client> ConnectAsync(IPEndPoint proxy, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(proxy, cancellationToken);
        return new MiniSocks5Client(socket, cancellationToken);
    }

    public static byte[] IPv4(string address) => [0x01, .. IPAddress.Parse(address).GetAddressBytes()];

    public static byte[] Name(string name) => [0x03, (byte)name.Length, .. Encoding.ASCII.GetBytes(name)];

    public static byte[] IPv6(string address) => [0x04, .. IPAddress.Parse(address).GetAddressBytes()];

    public static byte[] Request(byte command, byte[] address, ushort port) => [0x05, command, 0x00, .. address, (byte)(port >> 8), (byte)port];

    public Task SendAsync(byte[] bytes) => Socket.SendAsync(bytes, SocketFlags.None, _cancellationToken).AsTask();

    /// <summary>Offers <paramref name="methods"/> and returns the method the server chose.</summary>
    public async Task<byte> NegotiateAsync(params byte[] methods)
    {
        await SendAsync([0x05, (byte)methods.Length, .. methods]);
        var answer = await ReadExactAsync(2);
        Assert.Equal(0x05, answer[0]);
        return answer[1];
    }

    /// <summary>Negotiates no-auth, sends a request, returns the reply's code and BND.</summary>
    public async Task<(byte Code, IPEndPoint Bound)> RequestAsync(byte command, byte[] address, ushort port)
    {
        Assert.Equal(0x00, await NegotiateAsync(0x00));
        await SendAsync(Request(command, address, port));
        return await ReadReplyAsync();
    }

    public async Task<(byte Code, IPEndPoint Bound)> ReadReplyAsync()
    {
        var head = await ReadExactAsync(4);
        Assert.Equal(0x05, head[0]);
        Assert.Equal(0x00, head[2]);
        var address = await ReadExactAsync(head[3] switch
        {
            0x01 => 4,
            0x04 => 16,
            _ => throw new InvalidOperationException($"reply with ATYP {head[3]}"),
        });
        var port = await ReadExactAsync(2);
        return (head[1], new IPEndPoint(new IPAddress(address), port[0] << 8 | port[1]));
    }

    public async Task<byte[]> ReadExactAsync(int count)
    {
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await Socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, _cancellationToken);
            if (n == 0)
            {
                throw new EndOfStreamException($"server closed after {read} of {count} bytes");
            }

            read += n;
        }

        return buffer;
    }

    /// <summary>
    /// Reads until the server ends the connection; true when it did (EOF or reset) without sending anything.
    /// </summary>
    public async Task<bool> ClosedWithoutAnswerAsync()
    {
        var buffer = new byte[64];
        try
        {
            return await Socket.ReceiveAsync(buffer, SocketFlags.None, _cancellationToken) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    public void Dispose() => Socket.Dispose();
}
