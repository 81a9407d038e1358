using System.Buffers.Binary;
using CsCheck;
using Isthmus.Core.Naming;
using Isthmus.Core.Wire;

namespace Isthmus.Fuzz.Targets;

/// <summary>Link frames (datagram legs, peer links) and their reader, as a datagram switch consumes them.</summary>
public static class LinkFrameTargets
{
    private static readonly Gen<byte[]> Datagrams =
        Gen.Select(Gen.UInt, Gen.UShort, Gen.UInt, Gen.UShort, Gen.Byte.Array[0, 300])
            .Select((a, p, b, q, payload) => LinkFrame.Datagram(new VirtualEndpoint(a, p), new VirtualEndpoint(b, q), payload));

    private static readonly Gen<byte[]> Frames = Gen.Frequency(
        (4, Datagrams),
        (1, DirectoryTargets.Entries.Select(e => LinkFrame.Create(LinkFrameType.Directory, DirectoryCodec.Encode(e)))),
        (1, Gen.Select(Gen.Byte, Gen.Byte.Array[0, 64]).Select((t, body) => LinkFrame.Create((LinkFrameType)t, body))));

    /// <summary>Streams of frames, as a link carries them.</summary>
    public static readonly Gen<byte[]> Streams = Frames.Array[0, 8].Select(frames => frames.SelectMany(f => f).ToArray());

    /// <summary>Reader's own buffer (256 KiB) plus what arrived, and per byte of input room for what handling a tiny bad frame costs (an exception); never what a length field claims.</summary>
    private static long ReaderBudget(int length) => (320 << 10) + (512L * length);

    public static FuzzTarget Reader => new(
        "link-frames",
        FuzzGen.Mix(Streams, 600),
        input =>
        {
            var frames = 0;
            try
            {
                new LinkFrameReader(new ChunkedStream(input, input.Length)).RunAsync((type, body) =>
                {
                    frames++;
                    Consume(type, body);
                }, CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (ProtocolException)
            {
            }
        },
        ReaderBudget);

    public static FuzzTarget ReaderRoundTrip => new(
        "link-frames-roundtrip",
        Gen.Select(Frames.Array[0, 12], Gen.Int[0, 9]).Select((frames, seed) => (byte[])[(byte)seed, .. frames.SelectMany(f => f)]),
        input =>
        {
            var expected = Split(input.AsSpan(1));
            var seen = new List<byte[]>();
            new LinkFrameReader(new ChunkedStream(input[1..], input[0])).RunAsync((type, body) => seen.Add([(byte)type, .. body]), CancellationToken.None)
                .GetAwaiter().GetResult();
            FuzzFailureException.Assert(seen.Count == expected.Count, $"read {seen.Count} frames, wrote {expected.Count}");
            for (var i = 0; i < seen.Count; i++)
            {
                FuzzFailureException.Assert(seen[i].AsSpan().SequenceEqual(expected[i]), $"frame {i} differs");
            }
        },
        ReaderBudget);

    /// <summary>What the router and the agent do with a frame's body.</summary>
    private static void Consume(LinkFrameType type, ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case LinkFrameType.Datagram:
                if (LinkFrame.TryParseDatagram(body, out var src, out var dst, out var offset))
                {
                    FuzzFailureException.Assert(offset == LinkFrame.DatagramHeaderSize && body.Length - offset <= LinkFrame.MaxDatagramPayload, "datagram payload bounds");
                    var again = LinkFrame.Datagram(src, dst, body[offset..]);
                    FuzzFailureException.Assert(again.AsSpan(LinkFrame.PrefixSize).SequenceEqual(body), "datagram(parse(x)) != x");
                }

                break;
            case LinkFrameType.Directory:
                try
                {
                    _ = DirectoryCodec.Decode(body);
                }
                catch (ProtocolException)
                {
                }

                break;
            default:
                break;
        }
    }

    private static List<byte[]> Split(ReadOnlySpan<byte> stream)
    {
        var frames = new List<byte[]>();
        while (stream.Length > 0)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(stream);
            frames.Add(stream.Slice(4, length).ToArray());
            stream = stream[(4 + length)..];
        }

        return frames;
    }
}
