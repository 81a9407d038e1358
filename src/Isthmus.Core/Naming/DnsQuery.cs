using System.Buffers.Binary;
using System.Text;
using Isthmus.Core.Addressing;

namespace Isthmus.Core.Naming;

/// <summary>
/// One DNS question as a stub resolver sends it (RFC 1035 section 4): the header's id and flags and the
/// first question. Parsing never throws and never allocates more than the name: a datagram that is not a
/// well-formed standard query gives false (the responder then answers FORMERR if it has a header, or drops it).
/// </summary>
public readonly record struct DnsQuery(ushort Id, ushort Flags, string Name, ushort Type, ushort Class, int QuestionEnd)
{
    public const int HeaderLength = 12;
    public const ushort TypeA = 1;
    public const ushort TypePtr = 12;
    public const ushort TypeAaaa = 28;
    public const ushort TypeAny = 255;
    public const ushort ClassIn = 1;

    /// <summary>Bit 15 of the flags: set in responses.</summary>
    public const ushort FlagResponse = 0x8000;

    /// <summary>Names are at most 255 bytes on the wire (RFC 1035 2.3.4), labels at most 63.</summary>
    private const int MaxWireName = 255;

    /// <summary>Opcode 0 (QUERY) and the QR bit clear.</summary>
    public bool IsStandardQuery => (Flags & FlagResponse) == 0 && ((Flags >> 11) & 0xF) == 0;

    /// <summary>True if <paramref name="datagram"/> starts with a 12-byte header; id and flags are then valid.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> datagram, out ushort id, out ushort flags)
    {
        id = flags = 0;
        if (datagram.Length < HeaderLength)
        {
            return false;
        }

        id = BinaryPrimitives.ReadUInt16BigEndian(datagram);
        flags = BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
        return true;
    }

    public static bool TryParse(ReadOnlySpan<byte> datagram, out DnsQuery query)
    {
        query = default;
        if (!TryReadHeader(datagram, out var id, out var flags) || BinaryPrimitives.ReadUInt16BigEndian(datagram[4..]) != 1)
        {
            return false; // exactly one question: what every stub resolver sends
        }

        var position = HeaderLength;
        var name = new StringBuilder();
        var wireLength = 1;
        while (true)
        {
            if (position >= datagram.Length)
            {
                return false;
            }

            int label = datagram[position++];
            if (label == 0)
            {
                break;
            }

            // Compression pointers (0xC0) and the reserved label types have no place in a question.
            if (label > 63 || position + label > datagram.Length || (wireLength += label + 1) > MaxWireName)
            {
                return false;
            }

            if (name.Length > 0)
            {
                name.Append('.');
            }

            foreach (var b in datagram.Slice(position, label))
            {
                // Printable ASCII other than the separator: anything else is no name of ours, and no injection into logs.
                if (b is < 0x21 or > 0x7E || b == '.')
                {
                    return false;
                }

                name.Append((char)b);
            }

            position += label;
        }

        if (position + 4 > datagram.Length)
        {
            return false;
        }

        query = new DnsQuery(id, flags, name.ToString(), BinaryPrimitives.ReadUInt16BigEndian(datagram[position..]),
            BinaryPrimitives.ReadUInt16BigEndian(datagram[(position + 2)..]), position + 4);
        return true;
    }

    /// <summary>The VIP of a reverse name "d.c.b.a.in-addr.arpa" (host order), if it is one.</summary>
    public static bool TryParseReverseName(string name, out uint address)
    {
        address = 0;
        const string Suffix = ".in-addr.arpa";
        var key = name.EndsWith('.') ? name[..^1] : name;
        if (!key.EndsWith(Suffix, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var parts = key[..^Suffix.Length].Split('.');
        Array.Reverse(parts);
        return parts.Length == 4 && IPv4.TryParse(string.Join('.', parts), out address);
    }
}
