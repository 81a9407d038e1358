using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Node.Tests.Socks;

/// <summary>CONNECT through a real server, a real (byte-exact) client and real loopback "nodes".</summary>
public sealed class Socks5ConnectTests
{
    private const byte Connect = 0x01;

    [Theory]
    [InlineData("ipv4")]
    [InlineData("name")]
    [InlineData("canonical name with trailing dot")]
    [InlineData("dotted quad as a name")]
    public async Task Connect_ToPeerVip_RelaysBothWays_WithHalfClose_FromOwnVipAndTheReportedPort(string form)
    {
        await using var harness = new SocksHarness();
        using var echo = new EchoListener(SocksHarness.Image(SocksHarness.PeerVip));
        var address = form switch
        {
            "ipv4" => MiniSocks5Client.IPv4("100.64.1.3"),
            "name" => MiniSocks5Client.Name("B1"),
            "canonical name with trailing dot" => MiniSocks5Client.Name("b1.east.lab."),
            _ => MiniSocks5Client.Name("100.64.1.3"),
        };
        using var client = await harness.ClientAsync();

        var (code, bound) = await client.RequestAsync(Connect, address, echo.Port);

        Assert.Equal(0x00, code);
        Assert.Equal(IPAddress.Parse("100.64.1.2"), bound.Address);
        var payload = RandomNumberGenerator.GetBytes(300_000);
        var reading = ReadToEndAsync(client.Socket, harness.Timeout.Token);
        await client.SendAsync(payload);
        client.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal(payload, await reading); // ends only because our FIN crossed and the echo's came back
        // The destination saw the stream come from own VIP (its image) and exactly the port the reply named.
        Assert.True(echo.Peers.TryDequeue(out var peer));
        Assert.Equal(new IPEndPoint(SocksHarness.Image(SocksHarness.OwnVip), bound.Port), peer);
        Assert.True(harness.Overlay.Dials.TryDequeue(out var dial));
        Assert.Equal(new VirtualEndpoint(SocksHarness.OwnVip, (ushort)bound.Port), dial.Source);
        Assert.Equal(new VirtualEndpoint(SocksHarness.PeerVip, echo.Port), dial.Destination);
    }

    [Fact]
    public async Task Connect_ToOwnVip_GoesStraightToTheImage_WithoutTheOverlay()
    {
        await using var harness = new SocksHarness();
        using var echo = new EchoListener(SocksHarness.Image(SocksHarness.OwnVip));
        using var client = await harness.ClientAsync();

        var (code, bound) = await client.RequestAsync(Connect, MiniSocks5Client.IPv4("100.64.1.2"), echo.Port);

        Assert.Equal(0x00, code);
        await client.SendAsync([1, 2, 3]);
        client.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal([1, 2, 3], await ReadToEndAsync(client.Socket, harness.Timeout.Token));
        Assert.True(echo.Peers.TryDequeue(out var peer));
        Assert.Equal(new IPEndPoint(SocksHarness.Image(SocksHarness.OwnVip), bound.Port), peer);
        Assert.Empty(harness.Overlay.Dials);
    }

    [Fact]
    public async Task TwoLiveStreams_GetDifferentSourcePorts()
    {
        await using var harness = new SocksHarness();
        using var echo = new EchoListener(SocksHarness.Image(SocksHarness.PeerVip));
        using var first = await harness.ClientAsync();
        using var second = await harness.ClientAsync();

        var (_, a) = await first.RequestAsync(Connect, MiniSocks5Client.IPv4("100.64.1.3"), echo.Port);
        var (_, b) = await second.RequestAsync(Connect, MiniSocks5Client.IPv4("100.64.1.3"), echo.Port);

        Assert.NotEqual(a.Port, b.Port);
    }

    [Fact]
    public async Task UnknownName_IsHostUnreachable()
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();

        var (code, _) = await client.RequestAsync(Connect, MiniSocks5Client.Name("nosuchnode"), 80);

        Assert.Equal(0x04, code);
        Assert.True(await client.ClosedWithoutAnswerAsync());
        Assert.Empty(harness.Overlay.Dials);
    }

    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("127.0.0.1")]
    [InlineData("127.100.1.3")] // an image is not a VIP either
    public async Task NonVipDestination_IsNotAllowedByRuleset_AndLogged(string address)
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();

        var (code, _) = await client.RequestAsync(Connect, MiniSocks5Client.IPv4(address), 80);

        Assert.Equal(0x02, code);
        Assert.Empty(harness.Overlay.Dials);
        Assert.True(harness.Logger.Has(Microsoft.Extensions.Logging.LogLevel.Information, address), harness.Logger.ToString());
    }

    [Fact]
    public async Task NonVipAsDottedQuadName_IsNotAllowedByRuleset()
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();

        var (code, _) = await client.RequestAsync(Connect, MiniSocks5Client.Name("192.168.0.1"), 80);

        Assert.Equal(0x02, code);
    }

    [Fact]
    public async Task NothingListening_IsConnectionRefused()
    {
        await using var harness = new SocksHarness();
        var closedPort = ClosedPort(SocksHarness.Image(SocksHarness.PeerVip));
        using var client = await harness.ClientAsync();

        var (code, _) = await client.RequestAsync(Connect, MiniSocks5Client.IPv4("100.64.1.3"), closedPort);

        Assert.Equal(0x05, code);
        Assert.True(await client.ClosedWithoutAnswerAsync());
    }

    [Fact]
    public async Task IPv6Destination_IsAddressTypeNotSupported()
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();

        var (code, _) = await client.RequestAsync(Connect, MiniSocks5Client.IPv6("::1"), 80);

        Assert.Equal(0x08, code);
        Assert.Empty(harness.Overlay.Dials);
    }

    [Fact]
    public async Task Bind_IsCommandNotSupported()
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();

        var (code, _) = await client.RequestAsync(0x02, MiniSocks5Client.IPv4("100.64.1.3"), 80);

        Assert.Equal(0x07, code);
    }

    [Theory]
    [InlineData(LegStatus.Refused, 0x05)]
    [InlineData(LegStatus.HostUnreachable, 0x04)]
    [InlineData(LegStatus.NetworkUnreachable, 0x03)]
    [InlineData(LegStatus.TimedOut, 0x06)]
    [InlineData(LegStatus.AuthenticationFailed, 0x01)]
    [InlineData(LegStatus.BadRequest, 0x01)]
    public void LegStatus_MapsToReplyCode(LegStatus status, byte expected) =>
        Assert.Equal(expected, (byte)Isthmus.Node.Socks.Socks5Reply.FromLegStatus(status));

    internal static async Task<byte[]> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
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

    /// <summary>A port on <paramref name="address"/> where nothing listens (bound then released).</summary>
    private static ushort ClosedPort(IPAddress address)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(address, 0));
        return (ushort)((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
