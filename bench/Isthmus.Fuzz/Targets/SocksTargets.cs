using System.Net;
using System.Net.Sockets;
using CsCheck;
using Isthmus.Core.Wire;
using Isthmus.Node.Socks;

namespace Isthmus.Fuzz.Targets;

/// <summary>
/// The SOCKS5 server's parsing: the handshake (greeting and request, read from a real loopback socket, so the
/// reads split as the kernel splits them) and the UDP relay's datagram header.
/// </summary>
public static class SocksTargets
{
    private static readonly Lazy<Socket> Listener = new(() =>
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        return listener;
    });

    private static readonly Gen<byte[]> Greetings = Gen.Byte.Array[1, 8].Select(methods => (byte[])[5, (byte)methods.Length, .. methods]);

    private static readonly Gen<byte[]> Requests = Gen.Frequency(
        (2, Gen.Select(Gen.Byte[1, 3], Gen.Byte.Array[6]).Select((cmd, addr) => (byte[])[5, cmd, 0, 1, .. addr])),
        (2, Gen.Select(Gen.Byte[1, 3], Gen.Char[(char)0x21, (char)0x7E].Array[1, 255], Gen.UShort).Select((cmd, name, port) =>
            (byte[])[5, cmd, 0, 3, (byte)name.Length, .. name.Select(c => (byte)c), (byte)(port >> 8), (byte)port])),
        (1, Gen.Select(Gen.Byte[1, 3], Gen.Byte.Array[18]).Select((cmd, addr) => (byte[])[5, cmd, 0, 4, .. addr])));

    public static FuzzTarget Handshake => new(
        "socks5-handshake",
        FuzzGen.Mix(Gen.Select(Greetings, Requests, Gen.Byte.Array[0, 8]).Select((g, r, data) => (byte[])[.. g, .. r, .. data]), 300),
        input => RunHandshakeAsync(input).GetAwaiter().GetResult());

    public static FuzzTarget UdpHeader => new(
        "socks5-udp-header",
        FuzzGen.Mix(Gen.Frequency(
            (1, Gen.Select(Gen.UInt, Gen.UShort, Gen.Byte.Array[0, 32]).Select((a, p, data) =>
            {
                var header = new byte[Socks5UdpHeader.IPv4Length];
                Socks5UdpHeader.WriteIPv4(header, new VirtualEndpoint(a, p));
                return (byte[])[.. header, .. data];
            })),
            (1, Requests.Select(r => (byte[])[0, 0, 0, .. r[3..]]))), 300),
        input =>
        {
            if (!Socks5UdpHeader.TryParse(input, out var destination, out var headerLength, out var error))
            {
                FuzzFailureException.Assert(error.Length > 0, "a refused datagram must say why");
                return;
            }

            FuzzFailureException.Assert(headerLength > 0 && headerLength <= input.Length, $"header length {headerLength} of {input.Length} bytes");
            if (destination.Type == Socks5AddressType.IPv4)
            {
                var again = new byte[Socks5UdpHeader.IPv4Length];
                Socks5UdpHeader.WriteIPv4(again, new VirtualEndpoint(destination.Address, destination.Port));
                FuzzFailureException.Assert(again.AsSpan(3).SequenceEqual(input.AsSpan(3, Socks5UdpHeader.IPv4Length - 3)), "write(parse(x)) != x");
            }
            else
            {
                FuzzFailureException.Assert(destination.Name is { Length: > 0 } name && name.All(c => c is > ' ' and < (char)0x7F), "name is printable ASCII");
            }
        },
        AllocationBudget: n => 4096 + (4L * n));

    private static async Task RunHandshakeAsync(byte[] input)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = Listener.Value.AcceptAsync();
        await client.ConnectAsync(Listener.Value.LocalEndPoint!).ConfigureAwait(false);
        using var server = await accept.ConfigureAwait(false);
        await client.SendAsync(input, SocketFlags.None).ConfigureAwait(false);
        client.Shutdown(SocketShutdown.Send);

        // The client has said all it will: the parser must end (with a result or a ProtocolException), never wait.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var buffer = new byte[Socks5Handshake.MaxFrameLength];
        try
        {
            _ = await Socks5Handshake.ReadGreetingAsync(server, buffer, deadline.Token).ConfigureAwait(false);
            var (_, destination) = await Socks5Handshake.ReadRequestAsync(server, buffer, deadline.Token).ConfigureAwait(false);
            if (destination.Type == Socks5AddressType.DomainName)
            {
                FuzzFailureException.Assert(destination.Name is { Length: > 0 and <= 255 } name && name.All(c => c is > ' ' and < (char)0x7F), "name is printable ASCII");
            }
        }
        catch (ProtocolException)
        {
        }
        catch (OperationCanceledException)
        {
            throw new FuzzFailureException("the handshake parser waited on a client that had closed its side");
        }
    }
}
