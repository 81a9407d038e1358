using System.Buffers.Binary;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// Frames of a resumable WAN leg (after the leg header and reply): <c>u8 type | u32 length | body</c>,
/// big-endian. Data carries program bytes; Ack and Resume carry a cumulative count of received units (bytes,
/// plus one for the FIN); Fin and Reset have no body. Large data frames (up to 256 KiB, the relay reads
/// 128 KiB at a time) keep the per-byte cost to five header bytes per read.
/// </summary>
public static class ResumableFrame
{
    public const int HeaderSize = 5;
    public const int ControlSize = HeaderSize + 8;
    public const int MaxData = 256 * 1024;

    public static void WriteHeader(Span<byte> destination, ResumableFrameType type, int length)
    {
        destination[0] = (byte)type;
        BinaryPrimitives.WriteInt32BigEndian(destination[1..], length);
    }

    /// <summary>An Ack or Resume frame (13 bytes) carrying <paramref name="count"/>.</summary>
    public static void WriteCount(Span<byte> destination, ResumableFrameType type, long count)
    {
        WriteHeader(destination, type, 8);
        BinaryPrimitives.WriteInt64BigEndian(destination[HeaderSize..], count);
    }

    public static byte[] Count(ResumableFrameType type, long count)
    {
        var bytes = new byte[ControlSize];
        WriteCount(bytes, type, count);
        return bytes;
    }

    public static byte[] Empty(ResumableFrameType type)
    {
        var bytes = new byte[HeaderSize];
        WriteHeader(bytes, type, 0);
        return bytes;
    }

    public static long ReadCount(ReadOnlySpan<byte> body) => BinaryPrimitives.ReadInt64BigEndian(body);

    /// <summary>Checks a frame header: known type and the body length that type allows.</summary>
    public static bool TryParseHeader(ReadOnlySpan<byte> header, out ResumableFrameType type, out int length, out string error)
    {
        type = (ResumableFrameType)header[0];
        length = BinaryPrimitives.ReadInt32BigEndian(header[1..]);
        var ok = type switch
        {
            ResumableFrameType.Data => length is > 0 and <= MaxData,
            ResumableFrameType.Ack or ResumableFrameType.Resume => length == 8,
            ResumableFrameType.Fin or ResumableFrameType.Reset => length == 0,
            _ => false,
        };
        error = ok ? "" : $"bad resumable frame (type {header[0]}, length {length})";
        return ok;
    }
}

public enum ResumableFrameType : byte
{
    Data = 1,
    Ack = 2,
    Fin = 3,
    Reset = 4,
    Resume = 5,
}

/// <summary>Leg header flags of router-to-router stream legs.</summary>
public static class ResumableFlags
{
    /// <summary>After the reply the leg carries <see cref="ResumableFrame"/>s, not raw bytes.</summary>
    public const ushort Framed = 0x0001;

    /// <summary>The leg continues an existing stream (same stream id): a Resume frame follows the header.</summary>
    public const ushort Resume = 0x0002;
}
