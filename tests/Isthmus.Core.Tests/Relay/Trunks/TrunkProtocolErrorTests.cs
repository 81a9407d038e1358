using System.Buffers.Binary;
using System.Net.Sockets;
using Isthmus.Core.Relay.Trunks;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Trunks;

/// <summary>A "client" writing raw bytes from a plain socket: each broken rule kills the server trunk with a clear reason.</summary>
public sealed class TrunkProtocolErrorTests
{
    [Fact]
    public Task UnknownType_KillsTheTrunk() =>
        ExpectKilledAsync([.. Frame(TrunkFrameType.Open, 1), .. Frame((TrunkFrameType)9, 1)], "unknown frame type 9");

    [Fact]
    public Task DataOverCredit_KillsTheTrunk() =>
        ExpectKilledAsync([.. Frame(TrunkFrameType.Open, 1), .. Frame(TrunkFrameType.Data, 1, new byte[4096]), .. Frame(TrunkFrameType.Data, 1, new byte[1])],
            "stream 1 sent 1 bytes over its credit of 0", new TrunkOptions { InitialWindow = 4096 });

    [Fact]
    public Task DataForAStreamNeverOpened_KillsTheTrunk() =>
        ExpectKilledAsync([.. Frame(TrunkFrameType.Open, 1), .. Frame(TrunkFrameType.Data, 2, new byte[10])], "Data frame for stream 2, which was never opened");

    [Fact]
    public Task OpenWithAnIdNotGreaterThanTheLast_KillsTheTrunk() =>
        ExpectKilledAsync([.. Frame(TrunkFrameType.Open, 5), .. Frame(TrunkFrameType.Open, 5)], "Open of stream 5 after stream 5 (ids must increase)");

    [Fact]
    public Task OpenOfStreamZero_KillsTheTrunk() =>
        ExpectKilledAsync(Frame(TrunkFrameType.Open, 0), "Open frame for stream 0");

    [Fact]
    public Task OversizeLength_KillsTheTrunk_BeforeItsBodyArrives() =>
        ExpectKilledAsync([.. Frame(TrunkFrameType.Open, 1), .. Header(TrunkFrameType.Data, 1, 64 * 1024 + 1)], "Data frame of 65537 bytes (allowed 1..65536)");

    [Fact]
    public Task CreditOfTheWrongLength_KillsTheTrunk() =>
        ExpectKilledAsync([.. Frame(TrunkFrameType.Open, 1), .. Frame(TrunkFrameType.Credit, 1, new byte[3])], "Credit frame of 3 bytes (must be 4)");

    [Fact]
    public Task DataAfterFin_KillsTheTrunk() =>
        ExpectKilledAsync([.. Frame(TrunkFrameType.Open, 1), .. Frame(TrunkFrameType.Fin, 1), .. Frame(TrunkFrameType.Data, 1, new byte[1])], "Data on stream 1 after its Fin");

    [Fact]
    public async Task FramesForAStreamClosedHere_AreIgnored()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (raw, inner) = await LoopbackSockets.PairAsync();
        using var _ = raw;
        await using var trunk = Trunk.StartServer(new NetworkStream(inner, ownsSocket: true), TrunkOptions.Default, NullLogger.Instance);
        await raw.SendAsync(Frame(TrunkFrameType.Open, 1), timeout.Token);
        var stream = await trunk.AcceptAsync(timeout.Token);
        stream.Abort();
        // Frames that crossed our Reset, then a new stream that works.
        var credit = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(credit, 1000);
        byte[] late = [.. Frame(TrunkFrameType.Data, 1, new byte[100]), .. Frame(TrunkFrameType.Credit, 1, credit), .. Frame(TrunkFrameType.Fin, 1),
            .. Frame(TrunkFrameType.Reset, 1), .. Frame(TrunkFrameType.Open, 2), .. Frame(TrunkFrameType.Data, 2, [9, 8, 7])];
        await raw.SendAsync(late, timeout.Token);
        var next = await trunk.AcceptAsync(timeout.Token);
        var buffer = new byte[3];
        await next.ReadExactlyAsync(buffer, timeout.Token);
        Assert.Equal([9, 8, 7], buffer);
        Assert.True(trunk.IsAlive);
    }

    private static async Task ExpectKilledAsync(byte[] bytes, string expected, TrunkOptions? options = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (raw, inner) = await LoopbackSockets.PairAsync();
        using var _ = raw;
        await using var trunk = Trunk.StartServer(new NetworkStream(inner, ownsSocket: true), options ?? TrunkOptions.Default, NullLogger.Instance);
        await raw.SendAsync(bytes, timeout.Token);

        var reason = await trunk.Completion.WaitAsync(timeout.Token);

        Assert.Equal($"protocol error: {expected}", reason);
        Assert.False(trunk.IsAlive);
        // The trunk closed the connection: the raw peer reads to its end.
        await LoopbackSockets.ReadToEndAsync(raw, timeout.Token);
    }

    private static byte[] Header(TrunkFrameType type, uint streamId, int length)
    {
        var header = new byte[TrunkFrame.HeaderSize];
        TrunkFrame.WriteHeader(header, type, streamId, length);
        return header;
    }

    private static byte[] Frame(TrunkFrameType type, uint streamId, byte[]? body = null) =>
        [.. Header(type, streamId, body?.Length ?? 0), .. body ?? []];
}
