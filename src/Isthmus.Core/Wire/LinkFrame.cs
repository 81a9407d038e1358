using System.Buffers.Binary;

namespace Isthmus.Core.Wire;

/// <summary>
/// Frames on datagram legs (agent ↔ router) and peer links (router → router):
/// <c>[u32 length of the rest][u8 type][body]</c>, integers big-endian. A datagram's body is
/// <c>[u32 src vip][u16 src port][u32 dst vip][u16 dst port][payload]</c>; a directory's body is UTF-8 JSON.
/// The payload is the program's datagram, unchanged: the framing lives only between Isthmus hops.
/// </summary>
public static class LinkFrame
{
    public const int PrefixSize = 5;
    public const int DatagramHeaderSize = 12;

    /// <summary>Largest UDP payload over IPv4 (65535 - 20 - 8).</summary>
    public const int MaxDatagramPayload = 65507;

    /// <summary>Largest frame body accepted (directories of tens of thousands of nodes fit).</summary>
    public const int MaxBody = 4 << 20;

    /// <summary>A complete datagram frame.</summary>
    public static byte[] Datagram(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > MaxDatagramPayload)
        {
            throw new ArgumentException($"datagram of {payload.Length} bytes exceeds {MaxDatagramPayload}", nameof(payload));
        }

        var frame = new byte[PrefixSize + DatagramHeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(1 + DatagramHeaderSize + payload.Length));
        frame[4] = (byte)LinkFrameType.Datagram;
        var body = frame.AsSpan(PrefixSize);
        BinaryPrimitives.WriteUInt32BigEndian(body, source.Address);
        BinaryPrimitives.WriteUInt16BigEndian(body[4..], source.Port);
        BinaryPrimitives.WriteUInt32BigEndian(body[6..], destination.Address);
        BinaryPrimitives.WriteUInt16BigEndian(body[10..], destination.Port);
        payload.CopyTo(body[DatagramHeaderSize..]);
        return frame;
    }

    /// <summary>A complete frame of any type around <paramref name="body"/>.</summary>
    public static byte[] Create(LinkFrameType type, ReadOnlySpan<byte> body)
    {
        if (body.Length > MaxBody)
        {
            throw new ArgumentException($"frame body of {body.Length} bytes exceeds {MaxBody}", nameof(body));
        }

        var frame = new byte[PrefixSize + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(1 + body.Length));
        frame[4] = (byte)type;
        body.CopyTo(frame.AsSpan(PrefixSize));
        return frame;
    }

    /// <summary>Reads a datagram body; false if it is too short or too long to be one.</summary>
    public static bool TryParseDatagram(ReadOnlySpan<byte> body, out VirtualEndpoint source, out VirtualEndpoint destination, out int payloadOffset)
    {
        source = default;
        destination = default;
        payloadOffset = DatagramHeaderSize;
        if (body.Length < DatagramHeaderSize || body.Length - DatagramHeaderSize > MaxDatagramPayload)
        {
            return false;
        }

        source = new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(body), BinaryPrimitives.ReadUInt16BigEndian(body[4..]));
        destination = new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(body[6..]), BinaryPrimitives.ReadUInt16BigEndian(body[10..]));
        return true;
    }
}

public enum LinkFrameType : byte
{
    Datagram = 1,
    Directory = 2,

    /// <summary>Peer links only: the sender's domain table (JSON, see <c>DomainTableCodec</c>), on link-up and after every change.</summary>
    Domains = 3,
}
