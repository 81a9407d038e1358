using System.Buffers.Binary;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// Trunk frames: <c>u8 type | u32 streamId | u32 length | body[length]</c>, big-endian. Stream ids are chosen
/// by the dialling side only (1, 2, 3, ... strictly increasing); stream 0 is the trunk itself (Ping, Pong).
/// </summary>
public static class TrunkFrame
{
    public const int HeaderSize = 9;

    public const int CreditSize = 4;

    public const int PingSize = 8;

    public static void WriteHeader(Span<byte> destination, TrunkFrameType type, uint streamId, int length)
    {
        destination[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], streamId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)length);
    }

    /// <summary>Why a header with this type and length can never be valid, or null.</summary>
    public static string? HeaderProblem(byte type, uint streamId, uint length, int maxFrameData) => (TrunkFrameType)type switch
    {
        TrunkFrameType.Open or TrunkFrameType.Fin or TrunkFrameType.Reset when length != 0 =>
            $"{(TrunkFrameType)type} frame with a {length}-byte body (must be empty)",
        TrunkFrameType.Data when length == 0 || length > maxFrameData => $"Data frame of {length} bytes (allowed 1..{maxFrameData})",
        TrunkFrameType.Credit when length != CreditSize => $"Credit frame of {length} bytes (must be {CreditSize})",
        TrunkFrameType.Ping or TrunkFrameType.Pong when length != PingSize => $"{(TrunkFrameType)type} frame of {length} bytes (must be {PingSize})",
        TrunkFrameType.Ping or TrunkFrameType.Pong when streamId != 0 => $"{(TrunkFrameType)type} frame for stream {streamId} (must be 0)",
        TrunkFrameType.Open or TrunkFrameType.Data or TrunkFrameType.Credit or TrunkFrameType.Fin or TrunkFrameType.Reset when streamId == 0 =>
            $"{(TrunkFrameType)type} frame for stream 0",
        TrunkFrameType.Open or TrunkFrameType.Data or TrunkFrameType.Credit or TrunkFrameType.Fin or TrunkFrameType.Reset
            or TrunkFrameType.Ping or TrunkFrameType.Pong => null,
        _ => $"unknown frame type {type}",
    };
}
