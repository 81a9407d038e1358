using CsCheck;
using Isthmus.Core;
using Isthmus.Core.Naming;
using Isthmus.Core.Wire;

namespace Isthmus.Fuzz.Targets;

/// <summary>The directory codec: peer links' directory frames and the router → node directory message.</summary>
public static class DirectoryTargets
{
    private static readonly Gen<string> Labels = Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-"].Array[1, 12]
        .Select(c => new string(c)).Where(NodeNames.IsValid);

    public static readonly Gen<DirectoryEntry[]> Entries =
        Gen.Select(Labels, Labels, Gen.UInt).Select((n, s, v) => new DirectoryEntry(n, s, v)).Array[0, 6];

    private static readonly byte[][] Tricky =
    [
        "null"u8.ToArray(), "[null]"u8.ToArray(), "[{}]"u8.ToArray(), "[{\"name\":null,\"site\":\"a\",\"vip\":\"1.2.3.4\"}]"u8.ToArray(),
        "[{\"name\":\"a\",\"site\":null,\"vip\":null}]"u8.ToArray(), "[{\"name\":1,\"site\":\"a\",\"vip\":\"1.2.3.4\"}]"u8.ToArray(),
        "{\"type\":\"x\"}"u8.ToArray(), "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]"u8.ToArray(),
    ];

    public static FuzzTarget Decode => new(
        "directory",
        Gen.Frequency((6, FuzzGen.Mix(Entries.Select(DirectoryCodec.Encode), 200)), (1, Gen.OneOf(Tricky.Select(Gen.Const).ToArray())),
            (1, FuzzGen.Mutated(Gen.OneOf(Tricky.Select(Gen.Const).ToArray())))),
        input =>
        {
            try
            {
                var entries = DirectoryCodec.Decode(input);
                var again = DirectoryCodec.Decode(DirectoryCodec.Encode(entries));
                FuzzFailureException.Assert(again.SequenceEqual(entries), "decode(encode(decode(x))) != decode(x)");
            }
            catch (ProtocolException)
            {
            }
        },
        AllocationBudget: n => (64 << 10) + (64L * n));

    public static FuzzTarget RoundTrip => new(
        "directory-roundtrip",
        Entries.Select(DirectoryCodec.Encode),
        input =>
        {
            var entries = DirectoryCodec.Decode(input);
            FuzzFailureException.Assert(DirectoryCodec.Encode(entries).AsSpan().SequenceEqual(input), "encode(decode(x)) != x");
        },
        AllocationBudget: n => (64 << 10) + (64L * n));
}
