using System.Net;
using Isthmus.Core.Native;
using Isthmus.Node.Socks;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Isthmus.Node.Tests.Socks;

/// <summary>What the server does with clients that are wrong, slow, or not ours.</summary>
public sealed class Socks5HandshakeTests
{
    [Theory]
    [InlineData(new byte[] { 0x04, 0x01, 0x00, 0x50, 0x0A, 0x00, 0x00, 0x01, 0x00 })] // a SOCKS4 CONNECT
    [InlineData(new byte[] { (byte)'G', (byte)'E', (byte)'T', (byte)' ', (byte)'/', (byte)'\r', (byte)'\n' })] // HTTP
    [InlineData(new byte[] { 0x05, 0x00 })] // no methods at all
    public async Task BadGreeting_IsClosedWithoutAnswer(byte[] garbage)
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();

        await client.SendAsync(garbage);

        Assert.True(await client.ClosedWithoutAnswerAsync());
        Assert.True(harness.Logger.Has(LogLevel.Information, "closed"), harness.Logger.ToString());
    }

    [Theory]
    [InlineData(new byte[] { 0x04, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0, 80 })] // request with version 4
    [InlineData(new byte[] { 0x05, 0x01, 0x00, 0x03, 0x00, 0, 80 })] // empty name
    [InlineData(new byte[] { 0x05, 0x01, 0x00, 0x03, 0x03, (byte)'a', 0x00, (byte)'b', 0, 80 })] // NUL in the name
    public async Task BadRequest_IsClosedWithoutReply(byte[] request)
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();
        Assert.Equal(0x00, await client.NegotiateAsync(0x00));

        await client.SendAsync(request);

        Assert.True(await client.ClosedWithoutAnswerAsync());
        Assert.Empty(harness.Overlay.Dials);
    }

    [Fact]
    public async Task UnknownAddressType_IsAddressTypeNotSupported()
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();
        Assert.Equal(0x00, await client.NegotiateAsync(0x00));

        await client.SendAsync([0x05, 0x01, 0x00, 0x07]);

        Assert.Equal(0x08, (await client.ReadReplyAsync()).Code);
    }

    [Fact]
    public async Task OnlyUsernamePasswordOffered_GetsNoAcceptableMethods()
    {
        await using var harness = new SocksHarness();
        using var client = await harness.ClientAsync();

        Assert.Equal(0xFF, await client.NegotiateAsync(0x02));
        Assert.True(await client.ClosedWithoutAnswerAsync());
    }

    [Fact]
    public async Task GreetingAndRequestInOneSegment_AreBothRead()
    {
        await using var harness = new SocksHarness();
        using var echo = new EchoListener(SocksHarness.Image(SocksHarness.PeerVip));
        using var client = await harness.ClientAsync();

        // Optimistic client: greeting, request and first payload bytes in one write.
        await client.SendAsync([0x05, 0x01, 0x00, .. MiniSocks5Client.Request(0x01, MiniSocks5Client.IPv4("100.64.1.3"), echo.Port), .. "ping"u8.ToArray()]);

        Assert.Equal([0x05, 0x00], await client.ReadExactAsync(2));
        Assert.Equal(0x00, (await client.ReadReplyAsync()).Code);
        Assert.Equal("ping"u8.ToArray(), await client.ReadExactAsync(4));
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { 0x05 })]
    [InlineData(new byte[] { 0x05, 0x01, 0x00, 0x05, 0x01 })] // greeting done, request cut short
    public async Task SlowOrTruncatedHandshake_IsClosedAfterTheTimeout(byte[] partial)
    {
        await using var harness = new SocksHarness(new Socks5ServerOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(200) });
        using var client = await harness.ClientAsync();

        await client.SendAsync(partial);

        // The client never sends the rest; the server must give up on its own (ours is not closing).
        var answered = partial.Length >= 3 ? await client.ReadExactAsync(2) : [];
        Assert.True(await client.ClosedWithoutAnswerAsync());
        Assert.True(partial.Length < 3 || answered is [0x05, 0x00]);
        Assert.True(harness.Logger.Has(LogLevel.Information, "no complete handshake"), harness.Logger.ToString());
    }

    [Fact]
    public async Task ClientOfAnotherUid_GetsNoAcceptableMethods_AndAWarningWithItsUid()
    {
        var ownUid = Libc.GetUid();
        await using var harness = new SocksHarness(new Socks5ServerOptions { AllowedUid = ownUid + 1 });
        using var client = await harness.ClientAsync();

        Assert.Equal(0xFF, await client.NegotiateAsync(0x00));

        Assert.True(await client.ClosedWithoutAnswerAsync());
        Assert.True(harness.Logger.Has(LogLevel.Warning, $"owned by uid {ownUid}"), harness.Logger.ToString());
    }

    [Fact]
    public async Task ClientOfOwnUid_IsServed()
    {
        await using var harness = new SocksHarness(new Socks5ServerOptions { AllowedUid = null });
        using var client = await harness.ClientAsync();

        Assert.Equal(0x00, await client.NegotiateAsync(0x00));
    }

    [Fact]
    public async Task SocketOwners_FindsTheOwnUidOfARealConnection_AndNotTheAcceptedEnd()
    {
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var accepted = await listener.AcceptAsync();

        Assert.Equal(Libc.GetUid(), SocketOwners.TcpOwner((IPEndPoint)accepted.RemoteEndPoint!, (IPEndPoint)accepted.LocalEndPoint!));
        // Swapped ends would name the server's socket; a made-up peer names nothing.
        Assert.Null(SocketOwners.TcpOwner((IPEndPoint)accepted.RemoteEndPoint!, new IPEndPoint(IPAddress.Loopback, 1)));
    }
}
