using System.Security.Cryptography;
using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Emulation;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Emulation;

/// <summary>The emulator's wrapper on real loopback sockets: bytes arrive complete, in order, and the FIN after them.</summary>
public class EmulatedSendStreamTests
{
    [Theory]
    [InlineData("delay=2ms,jitter=2ms")]
    [InlineData("delay=1ms,rate=200Mbit")]
    [InlineData("rate=1Gbit")]
    [InlineData("loss=50%")]
    public async Task Bytes_arrive_in_order_then_the_fin(string text)
    {
        using var emulator = new WanEmulator(WanEmulationSpec.Parse(text), NullLogger.Instance);
        var (outer, inner) = await LoopbackSockets.PairAsync();
        using (outer)
        using (inner)
        {
            var payload = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
            var receiving = LoopbackSockets.ReadToEndAsync(inner);
            var endpoint = new RelayEndpoint(outer, emulator.Wrap(outer));
            // Uneven writes, small and large, as TLS records and frames are.
            var offset = 0;
            var sizes = new[] { 1, 100, 5000, 70000, 131072 };
            for (var i = 0; offset < payload.Length; i++)
            {
                var n = Math.Min(sizes[i % sizes.Length], payload.Length - offset);
                await endpoint.Stream.WriteAsync(payload.AsMemory(offset, n));
                offset += n;
            }

            await endpoint.ShutdownSendAsync();
            var received = await receiving.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(received));
            await endpoint.DisposeAsync();
        }
    }

    [Fact]
    public async Task Writes_are_refused_during_an_outage()
    {
        using var emulator = new WanEmulator(WanEmulationSpec.Parse("delay=1ms,outage=1h@0s"), NullLogger.Instance);
        var (outer, inner) = await LoopbackSockets.PairAsync();
        using (outer)
        using (inner)
        {
            Assert.True(emulator.IsOut);
            Assert.Throws<IOException>(() => emulator.Wrap(outer));
        }
    }

    [Fact]
    public async Task An_outage_ends_wrapped_connections_in_both_directions()
    {
        using var emulator = new WanEmulator(WanEmulationSpec.Parse("delay=1ms,outage=1h@1s"), NullLogger.Instance);
        var (outer, inner) = await LoopbackSockets.PairAsync();
        using (outer)
        using (inner)
        {
            var stream = emulator.Wrap(outer);
            await stream.WriteAsync(new byte[] { 1, 2, 3 });
            // Bounded: the outage begins 1 s after the emulator started; the peer then reads the end.
            var received = await LoopbackSockets.ReadToEndAsync(inner).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(new byte[] { 1, 2, 3 }, received);
            Assert.Equal(0, await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            await Assert.ThrowsAsync<IOException>(async () => await stream.WriteAsync(new byte[] { 4 }));
            Assert.True(emulator.IsOut);
            await stream.DisposeAsync();
        }
    }
}
