using System.Net.Sockets;
using System.Security.Cryptography;
using Isthmus.Core.Relay;
using Xunit;

namespace Isthmus.Core.Tests.Relay;

/// <summary>The relay on real loopback TCP sockets: client ⇄ [relay] ⇄ server.</summary>
public sealed class StreamRelayTests
{
    [Fact]
    public async Task CopiesBothWays_ByteExact_AndPropagatesHalfClose()
    {
        var (client, relayA) = await LoopbackSockets.PairAsync();
        var (relayB, server) = await LoopbackSockets.PairAsync();
        var relay = StreamRelay.RunAsync(new RelayEndpoint(relayA), new RelayEndpoint(relayB));
        var upstream = RandomNumberGenerator.GetBytes(10 << 20);
        var downstream = RandomNumberGenerator.GetBytes(3 << 20);

        var serverSide = Task.Run(async () =>
        {
            var received = await LoopbackSockets.ReadToEndAsync(server); // ends only because the client's FIN crossed the relay
            await server.SendAsync(downstream);
            server.Shutdown(SocketShutdown.Send);
            return received;
        });
        var sending = client.SendAsync(upstream);
        await sending;
        client.Shutdown(SocketShutdown.Send);
        var back = await LoopbackSockets.ReadToEndAsync(client);

        Assert.Equal(upstream, await serverSide);
        Assert.Equal(downstream, back);
        var result = await relay;
        Assert.False(result.Failed);
        Assert.Equal(upstream.Length, result.BytesAToB);
        Assert.Equal(downstream.Length, result.BytesBToA);
        client.Dispose();
        server.Dispose();
    }

    [Fact]
    public async Task ResetOnOneSide_ResetsTheOther()
    {
        var (client, relayA) = await LoopbackSockets.PairAsync();
        var (relayB, server) = await LoopbackSockets.PairAsync();
        var relay = StreamRelay.RunAsync(new RelayEndpoint(relayA), new RelayEndpoint(relayB));
        await client.SendAsync(new byte[] { 1, 2, 3 });
        var got = new byte[3];
        Assert.Equal(3, await server.ReceiveAsync(got));

        server.LingerState = new LingerOption(true, 0);
        server.Dispose(); // RST towards the relay

        var result = await relay;
        Assert.True(result.Failed);
        var error = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            var buffer = new byte[16];
            while (await client.ReceiveAsync(buffer) > 0)
            {
            }

            // A clean EOF would be wrong: the program must see the reset.
            throw new SocketException((int)SocketError.Success);
        });
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        client.Dispose();
    }
}
