using System.Buffers.Binary;
using CsCheck;
using Isthmus.Core.Naming;

namespace Isthmus.Fuzz.Targets;

/// <summary>The agent's DNS responder: its parser of a program's query and the answer it writes from it.</summary>
public static class DnsTargets
{
    private static readonly Gen<string> Labels = Gen.Char[(char)0x21, (char)0x7E].Array[1, 63]
        .Select(c => new string(c.Select(x => x == '.' ? 'x' : x).ToArray()));

    private static readonly Gen<string> Names = Gen.Frequency(
        (3, Labels.Array[1, 4].Select(l => string.Join('.', l))),
        (1, Gen.Select(Gen.Byte, Gen.Byte, Gen.Byte, Gen.Byte).Select((a, b, c, d) => $"{d}.{c}.{b}.{a}.in-addr.arpa")));

    private static readonly Gen<byte[]> Queries = Gen.Select(Gen.UShort, Gen.UShort, Names, Gen.UShort, Gen.UShort)
        .Select((id, flags, name, type, cls) => Encode(id, flags, name, type, cls));

    public static FuzzTarget Query => new(
        "dns-query",
        FuzzGen.Mix(Queries, 300),
        input =>
        {
            _ = DnsQuery.TryReadHeader(input, out _, out _);
            if (!DnsQuery.TryParse(input, out var query))
            {
                return;
            }

            FuzzFailureException.Assert(query.QuestionEnd > DnsQuery.HeaderLength && query.QuestionEnd <= input.Length, $"question ends at {query.QuestionEnd} of {input.Length}");
            FuzzFailureException.Assert(query.Name.All(c => c is > ' ' and < (char)0x7F), "a name is printable ASCII");
            _ = DnsQuery.TryParseReverseName(query.Name, out _);
            _ = query.IsStandardQuery;

            // Both kinds of answer fit the documented maximum and echo the question.
            var buffer = new byte[DnsResponse.MaxLength(query.QuestionEnd - DnsQuery.HeaderLength)];
            foreach (var (address, name) in new (uint?, string?)[] { (0x64400102u, null), (null, "a1.west.lab"), (null, null) })
            {
                var length = DnsResponse.Write(buffer, input, query, DnsRcode.NoError, authoritative: true, address, name);
                FuzzFailureException.Assert(DnsQuery.TryParse(buffer.AsSpan(0, length), out var echoed) && echoed.Name == query.Name && echoed.Type == query.Type,
                    "the answer does not carry the question");
            }

            _ = DnsResponse.WriteHeaderOnly(buffer, query.Id, query.Flags, DnsRcode.FormatError);
        },
        AllocationBudget: n => 16384 + (16L * n));

    public static FuzzTarget QueryRoundTrip => new(
        "dns-query-roundtrip",
        Gen.Select(Names, Gen.UShort).Select((name, type) => Encode(7, 0x0100, name, type, DnsQuery.ClassIn)),
        input =>
        {
            FuzzFailureException.Assert(DnsQuery.TryParse(input, out var query), "a well-formed query does not parse");
            FuzzFailureException.Assert(Encode(query.Id, query.Flags, query.Name, query.Type, query.Class).AsSpan().SequenceEqual(input), "write(parse(x)) != x");
        },
        AllocationBudget: n => 16384 + (16L * n));

    private static byte[] Encode(ushort id, ushort flags, string name, ushort type, ushort cls)
    {
        var bytes = new List<byte>();
        var header = new byte[DnsQuery.HeaderLength];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), 1);
        bytes.AddRange(header);
        foreach (var label in name.Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(label.Select(c => (byte)c));
        }

        bytes.Add(0);
        bytes.AddRange([(byte)(type >> 8), (byte)type, (byte)(cls >> 8), (byte)cls]);
        return [.. bytes];
    }
}
