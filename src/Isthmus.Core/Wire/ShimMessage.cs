using System.Buffers.Binary;

namespace Isthmus.Core.Wire;

/// <summary>
/// The preload shim's requests to its node agent over the AF_UNIX SOCK_SEQPACKET control socket
/// (see docs/ARCHITECTURE.md). Little-endian integers; addresses and ports in network order on the wire,
/// host order here.
/// </summary>
public readonly record struct ShimRequest(ShimOp Op, bool NonBlocking, VirtualEndpoint Destination, uint SourceAddress, ushort SourcePort)
{
    public const int Size = 32;
    public const uint Magic = 0x4D485349; // "ISHM" little-endian
    public const ushort Version = 1;

    public static bool TryParse(ReadOnlySpan<byte> source, out ShimRequest request)
    {
        request = default;
        if (source.Length != Size || BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic
            || BinaryPrimitives.ReadUInt16LittleEndian(source[4..]) != Version)
        {
            return false;
        }

        var op = (ShimOp)BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        if (op is not (ShimOp.Connect or ShimOp.Peer))
        {
            return false;
        }

        var flags = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        request = new ShimRequest(
            op,
            (flags & 1) != 0,
            new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(source[12..]), BinaryPrimitives.ReadUInt16BigEndian(source[16..])),
            BinaryPrimitives.ReadUInt32BigEndian(source[20..]),
            BinaryPrimitives.ReadUInt16BigEndian(source[18..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], (ushort)Op);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], NonBlocking ? 1u : 0u);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], Destination.Address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], Destination.Port);
        BinaryPrimitives.WriteUInt16BigEndian(destination[18..], SourcePort);
        BinaryPrimitives.WriteUInt32BigEndian(destination[20..], SourceAddress);
    }
}

public enum ShimOp : ushort
{
    Connect = 1,
    Peer = 2,
}

/// <summary>The agent's answer: errno (0 for success) and, for PEER, the virtual endpoint.</summary>
public readonly record struct ShimResponse(int Error, VirtualEndpoint Endpoint)
{
    public const int Size = 16;
    public const uint Magic = 0x52485349; // "ISHR" little-endian

    public void Write(Span<byte> destination)
    {
        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], Error);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], Endpoint.Address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[12..], Endpoint.Port);
    }

    public static bool TryParse(ReadOnlySpan<byte> source, out ShimResponse response)
    {
        response = default;
        if (source.Length != Size || BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
        {
            return false;
        }

        response = new ShimResponse(
            BinaryPrimitives.ReadInt32LittleEndian(source[4..]),
            new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(source[8..]), BinaryPrimitives.ReadUInt16BigEndian(source[12..])));
        return true;
    }
}
