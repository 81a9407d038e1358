using System.Buffers.Binary;

namespace Isthmus.Core.Naming;

/// <summary>DNS response codes the agent's responder gives (RFC 1035 4.1.1).</summary>
public enum DnsRcode : byte
{
    NoError = 0,
    FormatError = 1,
    ServerFailure = 2,
    NameError = 3,
    NotImplemented = 4,
}

/// <summary>
/// Writes the responses of the agent's DNS responder: the query's header and question echoed, then at most
/// one answer (A or PTR). Authoritative for the cluster's names; recursion shown as available because
/// other names are forwarded.
/// </summary>
public static class DnsResponse
{
    /// <summary>Seconds a stub may cache an answer: a name's VIP never changes, but membership of domains may.</summary>
    public const uint AnswerTtl = 5;

    /// <summary>The question is echoed as the client sent it (its case included, which some resolvers check: 0x20 encoding).</summary>
    public static int Write(Span<byte> destination, ReadOnlySpan<byte> request, in DnsQuery query, DnsRcode rcode, bool authoritative, uint? addressAnswer = null, string? nameAnswer = null)
    {
        var question = request[DnsQuery.HeaderLength..query.QuestionEnd];
        var answers = addressAnswer is not null || nameAnswer is not null ? 1 : 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination, query.Id);
        var flags = (ushort)(DnsQuery.FlagResponse | (query.Flags & 0x0100) /* RD */ | 0x0080 /* RA */ | (authoritative ? 0x0400 : 0) | (byte)rcode);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)answers);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], 0); // no authority, no additional records
        question.CopyTo(destination[DnsQuery.HeaderLength..]);
        var position = DnsQuery.HeaderLength + question.Length;
        if (answers == 0)
        {
            return position;
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], 0xC000 | DnsQuery.HeaderLength); // the question's name
        BinaryPrimitives.WriteUInt16BigEndian(destination[(position + 2)..], addressAnswer is not null ? DnsQuery.TypeA : DnsQuery.TypePtr);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(position + 4)..], DnsQuery.ClassIn);
        BinaryPrimitives.WriteUInt32BigEndian(destination[(position + 6)..], AnswerTtl);
        position += 10;
        if (addressAnswer is { } address)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[position..], 4);
            BinaryPrimitives.WriteUInt32BigEndian(destination[(position + 2)..], address);
            return position + 6;
        }

        var rdata = destination[(position + 2)..];
        var length = WriteName(rdata, nameAnswer!);
        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], (ushort)length);
        return position + 2 + length;
    }

    /// <summary>A 12-byte answer without the question, for a query that could not be parsed (FORMERR) or is no standard query (NOTIMP).</summary>
    public static int WriteHeaderOnly(Span<byte> destination, ushort id, ushort requestFlags, DnsRcode rcode)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, id);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)(DnsQuery.FlagResponse | (requestFlags & 0x7900) /* opcode, RD */ | 0x0080 | (byte)rcode));
        destination[4..DnsQuery.HeaderLength].Clear();
        return DnsQuery.HeaderLength;
    }

    /// <summary>The largest response <see cref="Write"/> produces for a question of that length (one 255-byte name answer).</summary>
    public static int MaxLength(int questionLength) => DnsQuery.HeaderLength + questionLength + 12 + 256;

    private static int WriteName(Span<byte> destination, string name)
    {
        var position = 0;
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            destination[position++] = (byte)label.Length;
            foreach (var c in label)
            {
                destination[position++] = (byte)c;
            }
        }

        destination[position++] = 0;
        return position;
    }
}
