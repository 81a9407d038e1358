using System.Buffers.Binary;
using System.Text.Json;
using CsCheck;
using Isthmus.Core.Wire;

namespace Isthmus.Fuzz.Targets;

/// <summary>Node ↔ router control frames (u32 length + JSON), as both ends read them.</summary>
public static class ControlTargets
{
    private static readonly Gen<string?> Text = Gen.Frequency((1, Gen.Const((string?)null)), (3, Gen.String.Select(s => (string?)s)));

    private static readonly Gen<ControlMessage> Messages =
        Gen.Select(Gen.OneOf(Gen.Const(ControlMessage.Challenge), Gen.Const(ControlMessage.Enrol), Gen.Const(ControlMessage.Enrolled),
                Gen.Const(ControlMessage.Ping), Gen.Const(ControlMessage.Directory), Gen.String), Text, Text, Text, Text,
                Gen.ULong.Nullable(), Gen.Int.Nullable(), Gen.Frequency((1, Gen.Const((Core.Naming.DirectoryEntry[]?)null)), (2, DirectoryTargets.Entries.Select(e => (Core.Naming.DirectoryEntry[]?)e))))
            .Select((type, nonce, name, spki, vip, session, lease, nodes) => new ControlMessage
            {
                Type = type,
                Nonce = nonce,
                Name = name,
                PublicKey = spki,
                Vip = vip,
                SessionId = session,
                LeaseSeconds = lease,
                Nodes = nodes is null ? null : Core.Naming.DirectoryCodec.ToWire(nodes),
            });

    /// <summary>Frames as a sender writes them, one to four in a row.</summary>
    private static readonly Gen<byte[]> Frames = Messages.Array[1, 4].Select(messages =>
    {
        using var stream = new MemoryStream();
        var channel = new ControlChannel(stream);
        foreach (var message in messages)
        {
            channel.SendAsync(message, CancellationToken.None).GetAwaiter().GetResult();
        }

        return stream.ToArray();
    });

    /// <summary>The router's side (node frames are at most 64 KiB) and the node's (4 MiB for directories).</summary>
    public static FuzzTarget Receive => new(
        "control-frames",
        Gen.Frequency((6, FuzzGen.Mix(Frames, 300)), (1, Gen.Select(Gen.UInt, Gen.Byte.Array[0, 64]).Select((length, rest) =>
        {
            var frame = new byte[4 + rest.Length];
            BinaryPrimitives.WriteUInt32BigEndian(frame, length);
            rest.CopyTo(frame, 4);
            return frame;
        }))),
        input =>
        {
            ReadAll(input, ControlChannel.MaxNodeFrame);
            ReadAll(input, ControlChannel.MaxFrame);
        },
        // The JSON reader's own work is proportional to the frame; a length field alone buys nothing.
        AllocationBudget: n => (96 << 10) + (64L * n));

    public static FuzzTarget RoundTrip => new(
        "control-frames-roundtrip",
        Messages.Select(m => JsonSerializer.SerializeToUtf8Bytes(m)),
        input =>
        {
            var message = JsonSerializer.Deserialize<ControlMessage>(input)!;
            using var stream = new MemoryStream();
            var channel = new ControlChannel(stream);
            channel.SendAsync(message, CancellationToken.None).GetAwaiter().GetResult();
            stream.Position = 0;
            var received = new ControlChannel(stream).ReceiveAsync(CancellationToken.None).GetAwaiter().GetResult();
            FuzzFailureException.Assert(received is not null, "a sent message was not received");
            FuzzFailureException.Assert(JsonSerializer.Serialize(received).Equals(JsonSerializer.Serialize(message), StringComparison.Ordinal), "receive(send(x)) != x");
        });

    private static void ReadAll(byte[] input, int limit)
    {
        var channel = new ControlChannel(new ChunkedStream(input, input.Length), limit);
        try
        {
            while (channel.ReceiveAsync(CancellationToken.None).GetAwaiter().GetResult() is { } message)
            {
                // What both ends do with the fields before trusting them.
                if (message.Nodes is { } nodes)
                {
                    try
                    {
                        _ = Core.Naming.DirectoryCodec.FromWire(nodes);
                    }
                    catch (ProtocolException)
                    {
                    }
                }
            }
        }
        catch (ProtocolException)
        {
        }
    }
}
