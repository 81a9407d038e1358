using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Node.Tests.Socks;

/// <summary>
/// UDP ASSOCIATE with real datagrams: the client's go to the overlay's stand-in; replies are injected the
/// way the agent delivers them, from image(sender VIP):port to image(own VIP):P.
/// </summary>
public sealed class Socks5UdpTests
{
    private const byte UdpAssociate = 0x03;

    [Fact]
    public async Task RoundTrip_PayloadsUnchanged_HeaderNamesTheSenderVip()
    {
        await using var harness = new SocksHarness();
        using var control = await harness.ClientAsync();
        var (code, relay) = await control.RequestAsync(UdpAssociate, MiniSocks5Client.IPv4("0.0.0.0"), 0);
        Assert.Equal(0x00, code);
        Assert.Equal(IPAddress.Loopback, relay.Address);
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var outbound = RandomNumberGenerator.GetBytes(1200);

        await SendAsync(udp, [0, 0, 0, .. MiniSocks5Client.IPv4("100.64.1.3"), 0x14, 0xE9, .. outbound], relay, harness.Timeout.Token);

        var (source, destination, payload) = await harness.Overlay.NextDatagramAsync(harness.Timeout.Token);
        Assert.Equal(SocksHarness.OwnVip, source.Address);
        Assert.Equal(new VirtualEndpoint(SocksHarness.PeerVip, 5353), destination);
        Assert.Equal(outbound, payload);

        // The reply, as the agent delivers it: from the sender's image and port, to image(own):P.
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Bind(new IPEndPoint(SocksHarness.Image(SocksHarness.PeerVip), 5353));
        var inbound = RandomNumberGenerator.GetBytes(900);
        await peer.SendToAsync(inbound, new IPEndPoint(SocksHarness.Image(SocksHarness.OwnVip), source.Port), harness.Timeout.Token);

        var buffer = new byte[2000];
        var received = await udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), harness.Timeout.Token);
        Assert.Equal(relay, received.RemoteEndPoint);
        Assert.Equal([0, 0, 0, 0x01, 100, 64, 1, 3, 0x14, 0xE9], buffer[..10]);
        Assert.Equal(inbound, buffer[10..received.ReceivedBytes]);
    }

    [Fact]
    public async Task ByName_Resolved_AndFragmentsAndNonVipsDropped()
    {
        await using var harness = new SocksHarness();
        using var control = await harness.ClientAsync();
        var (_, relay) = await control.RequestAsync(UdpAssociate, MiniSocks5Client.IPv4("0.0.0.0"), 0);
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        await SendAsync(udp, [0, 0, 1, .. MiniSocks5Client.IPv4("100.64.1.3"), 0, 53, .. "fragment"u8.ToArray()], relay, harness.Timeout.Token);
        await SendAsync(udp, [0, 0, 0, .. MiniSocks5Client.IPv4("10.0.0.1"), 0, 53, .. "not a vip"u8.ToArray()], relay, harness.Timeout.Token);
        await SendAsync(udp, [0, 0, 0, .. MiniSocks5Client.IPv6("::1"), 0, 53, .. "ipv6"u8.ToArray()], relay, harness.Timeout.Token);
        await SendAsync(udp, [0, 0, 0, .. MiniSocks5Client.Name("nosuch"), 0, 53, .. "unknown"u8.ToArray()], relay, harness.Timeout.Token);
        await SendAsync(udp, [0, 0, 0, .. MiniSocks5Client.Name("b1"), 0, 53, .. "by name"u8.ToArray()], relay, harness.Timeout.Token);

        // Datagrams on one socket pair keep their order on loopback: the first to arrive must be the good one.
        var (_, destination, payload) = await harness.Overlay.NextDatagramAsync(harness.Timeout.Token);
        Assert.Equal(new VirtualEndpoint(SocksHarness.PeerVip, 53), destination);
        Assert.Equal("by name"u8.ToArray(), payload);
    }

    [Fact]
    public async Task ToOwnVip_IsDeliveredToTheImage_FromTheAssociationsPort()
    {
        await using var harness = new SocksHarness();
        using var control = await harness.ClientAsync();
        var (_, relay) = await control.RequestAsync(UdpAssociate, MiniSocks5Client.IPv4("0.0.0.0"), 0);
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var local = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        local.Bind(new IPEndPoint(SocksHarness.Image(SocksHarness.OwnVip), 0));
        var port = (ushort)((IPEndPoint)local.LocalEndPoint!).Port;

        await SendAsync(udp, [0, 0, 0, .. MiniSocks5Client.IPv4("100.64.1.2"), (byte)(port >> 8), (byte)port, .. "hello me"u8.ToArray()], relay, harness.Timeout.Token);

        var buffer = new byte[100];
        var received = await local.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), harness.Timeout.Token);
        Assert.Equal("hello me"u8.ToArray(), buffer[..received.ReceivedBytes]);
        Assert.Equal(SocksHarness.Image(SocksHarness.OwnVip), ((IPEndPoint)received.RemoteEndPoint).Address);
    }

    [Fact]
    public async Task ClosingTheControlConnection_EndsTheAssociation()
    {
        await using var harness = new SocksHarness();
        var control = await harness.ClientAsync();
        var (_, relay) = await control.RequestAsync(UdpAssociate, MiniSocks5Client.IPv4("0.0.0.0"), 0);
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await SendAsync(udp, [0, 0, 0, .. MiniSocks5Client.IPv4("100.64.1.3"), 0, 7, 1], relay, harness.Timeout.Token);
        var (source, _, _) = await harness.Overlay.NextDatagramAsync(harness.Timeout.Token);

        control.Dispose();

        // Both sockets close: their ports can be bound again (eventually; bounded number of tries).
        var image = new IPEndPoint(SocksHarness.Image(SocksHarness.OwnVip), source.Port);
        Assert.True(await CanBindEventuallyAsync(image, harness.Timeout.Token), $"{image} still bound");
        Assert.True(await CanBindEventuallyAsync(relay, harness.Timeout.Token), $"{relay} still bound");
    }

    private static async Task SendAsync(Socket udp, byte[] datagram, EndPoint to, CancellationToken cancellationToken) =>
        await udp.SendToAsync(datagram, SocketFlags.None, to, cancellationToken);

    private static async Task<bool> CanBindEventuallyAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 500; attempt++)
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                probe.Bind(endpoint);
                return true;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                await Task.Delay(20, cancellationToken);
            }
        }

        return false;
    }
}
