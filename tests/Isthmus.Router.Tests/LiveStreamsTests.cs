using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Relay;
using Xunit;

namespace Isthmus.Router.Tests;

/// <summary>The registry of relayed streams, on real loopback sockets: ending a stream resets both of its legs.</summary>
public sealed class LiveStreamsTests
{
    [Fact]
    public async Task EndWhere_resets_the_matching_streams_only_and_a_disposed_registration_is_gone()
    {
        var streams = new LiveStreams();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(8);
        var pairs = new List<(Socket Far, RelayEndpoint Near)>();
        for (var i = 0; i < 4; i++)
        {
            var far = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await far.ConnectAsync(listener.LocalEndPoint!);
            pairs.Add((far, new RelayEndpoint(await listener.AcceptAsync())));
        }

        using var forbidden = streams.Register(Guid.NewGuid(), 1, 2, pairs[0].Near, pairs[1].Near);
        using var allowed = streams.Register(Guid.NewGuid(), 1, 3, pairs[2].Near, pairs[3].Near);
        Assert.Equal(2, streams.Count);

        var ended = streams.EndWhere((src, dst) => src == 1 && dst == 2);
        Assert.Single(ended);
        Assert.Equal(1, streams.Count);
        foreach (var far in new[] { pairs[0].Far, pairs[1].Far })
        {
            var e = await Assert.ThrowsAsync<SocketException>(async () => await far.ReceiveAsync(new byte[1]));
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        }

        // The other stream still carries bytes.
        await pairs[2].Far.SendAsync(new byte[] { 7 });
        var buffer = new byte[1];
        Assert.Equal(1, await pairs[2].Near.Socket!.ReceiveAsync(buffer));
        Assert.Equal(7, buffer[0]);

        allowed.Dispose();
        Assert.Equal(0, streams.Count);
        Assert.Empty(streams.EndWhere((_, _) => true));
        foreach (var (far, near) in pairs)
        {
            far.Dispose();
            await near.DisposeAsync();
        }
    }
}
