using System.Buffers.Binary;

namespace Isthmus.Core.Wire;

/// <summary>The 8-byte answer to a leg header: "ISTR", status, 3 reserved bytes.</summary>
public static class LegReply
{
    public const int Size = 8;
    public const uint Magic = 0x49535452; // "ISTR"

    public static byte[] Encode(LegStatus status)
    {
        var bytes = new byte[Size];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, Magic);
        bytes[4] = (byte)status;
        return bytes;
    }

    public static bool TryDecode(ReadOnlySpan<byte> source, out LegStatus status)
    {
        status = LegStatus.BadRequest;
        if (source.Length < Size || BinaryPrimitives.ReadUInt32BigEndian(source) != Magic || source[4] > (byte)LegStatus.BadRequest)
        {
            return false;
        }

        status = (LegStatus)source[4];
        return true;
    }
}
