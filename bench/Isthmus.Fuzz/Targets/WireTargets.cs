using System.Security.Cryptography;
using CsCheck;
using Isthmus.Core.Wire;

namespace Isthmus.Fuzz.Targets;

/// <summary>The leg header and leg reply: the first bytes every relay hop reads from an unauthenticated peer.</summary>
public static class WireTargets
{
    private static readonly byte[] Key = SHA256.HashData("isthmus fuzz key"u8);

    // A fixed "now" for IsFresh, so that the generator can aim timestamps at its edges.
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    private static readonly Gen<long> Timestamps = Gen.Frequency(
        (4, Gen.Long),
        (1, Gen.OneOf(Gen.Const(long.MinValue), Gen.Const(long.MaxValue), Gen.Const(0L),
            Gen.Const(Now.ToUnixTimeMilliseconds() + long.MinValue), Gen.Const(Now.ToUnixTimeMilliseconds() - long.MinValue + 1))),
        (2, Gen.Long[-200_000, 200_000].Select(d => Now.ToUnixTimeMilliseconds() + d)));

    public static readonly Gen<LegHeader> Headers =
        Gen.Select(Gen.Byte[(byte)LegKind.TcpStream, (byte)LegKind.Trunk], Gen.UShort, Gen.Guid, Gen.UInt, Gen.UShort, Gen.UInt, Gen.UShort,
                Gen.Select(Timestamps, Gen.ULong))
            .Select((kind, flags, id, srcIp, srcPort, dstIp, dstPort, rest) => new LegHeader((LegKind)kind, flags, id,
                new VirtualEndpoint(srcIp, srcPort), new VirtualEndpoint(dstIp, dstPort), rest.Item1, rest.Item2));

    public static FuzzTarget LegHeaderTarget => new(
        "leg-header",
        FuzzGen.Mix(Headers.Select(h => h.ToBytes(Key)), 200),
        CheckLegHeader,
        AllocationBudget: _ => 4096);

    public static FuzzTarget LegHeaderRoundTrip => new(
        "leg-header-roundtrip",
        Gen.Select(Headers, Gen.Int[0, LegHeader.Size * 8 - 1]).Select((h, bit) =>
        {
            var bytes = h.ToBytes(Key);
            return (byte[])[.. bytes, (byte)(bit >> 8), (byte)bit];
        }),
        input =>
        {
            var raw = input[..LegHeader.Size];
            var bit = (input[^2] << 8) | input[^1];
            FuzzFailureException.Assert(LegHeader.TryParse(raw, out var header, out var error), $"a written header does not parse: {error}");
            FuzzFailureException.Assert(LegHeader.VerifyMac(raw, Key), "a written header's MAC does not verify");
            FuzzFailureException.Assert(header!.ToBytes(Key).AsSpan().SequenceEqual(raw), "parse(write(x)) != x");
            // Any bit flipped before the end of the MAC must break the MAC (or the structure).
            if (bit < 88 * 8)
            {
                raw[bit / 8] ^= (byte)(1 << (bit % 8));
                FuzzFailureException.Assert(!LegHeader.VerifyMac(raw, Key), $"bit {bit} flipped, MAC still verifies");
            }
        },
        AllocationBudget: _ => 8192);

    public static FuzzTarget LegReplyTarget => new(
        "leg-reply",
        FuzzGen.Mix(Gen.Byte[0, 10].Select(s => LegReply.Encode((LegStatus)s)), 16),
        input =>
        {
            if (LegReply.TryDecode(input, out var status))
            {
                FuzzFailureException.Assert(status is >= LegStatus.Ok and <= LegStatus.BadRequest, $"status {status} out of range");
                FuzzFailureException.Assert(LegReply.Encode(status).AsSpan(0, 5).SequenceEqual(input.AsSpan(0, 5)), "encode(decode(x)) differs");
                _ = LegStatusErrno.ToErrno(status);
            }
        },
        AllocationBudget: _ => 1024);

    private static void CheckLegHeader(byte[] input)
    {
        var parsed = LegHeader.TryParse(input, out var header, out var error);
        // A MAC check on anything, parsed or not, must answer and not throw.
        _ = LegHeader.VerifyMac(input, Key);
        if (!parsed)
        {
            FuzzFailureException.Assert(header is null && error.Length > 0, "a refused header must come with a reason and no value");
            return;
        }

        FuzzFailureException.Assert(Enum.IsDefined(header!.Kind), $"kind {header.Kind} accepted");
        _ = header.IsFresh(Now);
        _ = header.IsFresh(DateTimeOffset.UtcNow);
        var again = header.ToBytes(Key);
        FuzzFailureException.Assert(LegHeader.TryParse(again, out var reparsed, out _) && reparsed == header, "parse(write(parse(x))) != parse(x)");
        FuzzFailureException.Assert(again.AsSpan(0, 52).SequenceEqual(input.AsSpan(0, 52)), "the fields a header was parsed from are not written back");
    }
}
