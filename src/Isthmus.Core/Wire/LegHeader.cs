using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Isthmus.Core.Wire;

/// <summary>
/// The first bytes of every relay leg (agent→router, router→router, router→agent). It names the stream and
/// its virtual endpoints and is authenticated by an HMAC, so a process without the key cannot open or
/// inject into a relay. Programs never see it: it is consumed by the next hop before any program byte.
/// Layout (96 bytes, integers big-endian): magic "ISTL", version, kind, flags, stream id (16), src vip,
/// src port, dst vip, dst port, unix ms, key id, HMAC-SHA256 (32), zero padding.
/// </summary>
public sealed record LegHeader(
    LegKind Kind,
    ushort Flags,
    Guid StreamId,
    VirtualEndpoint Source,
    VirtualEndpoint Destination,
    long TimestampMs,
    ulong KeyId)
{
    public const int Size = 96;
    public const uint Magic = 0x4953544C; // "ISTL"
    public const byte Version = 1;
    private const int MacOffset = 56;
    private const int MacLength = 32;

    /// <summary>First byte of a leg, used by listeners that also accept TLS on the same port.</summary>
    public const byte FirstByte = (byte)'I';

    /// <summary>How far a header's clock may be from ours; replays inside the window are caught by stream id.</summary>
    public static readonly TimeSpan FreshnessWindow = TimeSpan.FromSeconds(120);

    /// <summary>Serialises the header and its HMAC under <paramref name="key"/>.</summary>
    public void Write(Span<byte> destination, ReadOnlySpan<byte> key)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException("buffer too small for a leg header", nameof(destination));
        }

        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(destination, Magic);
        destination[4] = Version;
        destination[5] = (byte)Kind;
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], Flags);
        StreamId.TryWriteBytes(destination[8..24]);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], Source.Address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[28..], Source.Port);
        BinaryPrimitives.WriteUInt32BigEndian(destination[30..], Destination.Address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[34..], Destination.Port);
        BinaryPrimitives.WriteInt64BigEndian(destination[36..], TimestampMs);
        BinaryPrimitives.WriteUInt64BigEndian(destination[44..], KeyId);
        // bytes 52..55 reserved (zero)
        HMACSHA256.HashData(key, destination[..MacOffset], destination.Slice(MacOffset, MacLength));
    }

    public byte[] ToBytes(ReadOnlySpan<byte> key)
    {
        var bytes = new byte[Size];
        Write(bytes, key);
        return bytes;
    }

    /// <summary>
    /// Parses the structure of a header (not its MAC: the key depends on <see cref="KeyId"/>, so callers
    /// look the key up and then call <see cref="VerifyMac"/>).
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out LegHeader? header, out string error)
    {
        header = null;
        if (source.Length < Size)
        {
            error = $"leg header truncated ({source.Length} of {Size} bytes)";
            return false;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(source) != Magic)
        {
            error = "not a leg header (bad magic)";
            return false;
        }

        if (source[4] != Version)
        {
            error = $"unsupported leg header version {source[4]}";
            return false;
        }

        var kind = (LegKind)source[5];
        if (kind is not (LegKind.TcpStream or LegKind.Datagram or LegKind.PeerLink or LegKind.DirectStream or LegKind.Trunk))
        {
            error = $"unknown leg kind {source[5]}";
            return false;
        }

        header = new LegHeader(
            kind,
            BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            new Guid(source[8..24]),
            new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(source[24..]), BinaryPrimitives.ReadUInt16BigEndian(source[28..])),
            new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(source[30..]), BinaryPrimitives.ReadUInt16BigEndian(source[34..])),
            BinaryPrimitives.ReadInt64BigEndian(source[36..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[44..]));
        error = "";
        return true;
    }

    /// <summary>Constant-time check of the MAC in a raw header; false for anything shorter than a header.</summary>
    public static bool VerifyMac(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> key)
    {
        if (raw.Length < Size)
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[MacLength];
        HMACSHA256.HashData(key, raw[..MacOffset], expected);
        return CryptographicOperations.FixedTimeEquals(expected, raw.Slice(MacOffset, MacLength));
    }

    /// <summary>
    /// Whether the header's clock is within the window of <paramref name="now"/>. Written as two comparisons, not
    /// |now - t|: a timestamp near now + long.MinValue made the subtraction wrap to long.MinValue, and
    /// Math.Abs of that throws (found by fuzzing).
    /// </summary>
    public bool IsFresh(DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var window = (long)FreshnessWindow.TotalMilliseconds;
        return TimestampMs >= nowMs - window && TimestampMs <= nowMs + window;
    }
}

public enum LegKind : byte
{
    /// <summary>One program's TCP connection; after the reply the leg carries its bytes.</summary>
    TcpStream = 1,

    /// <summary>A node agent's datagram link to its router; after the reply it carries <see cref="LinkFrame"/>s both ways.</summary>
    Datagram = 2,

    /// <summary>A router's link to a peer router (one per direction); after the reply it carries <see cref="LinkFrame"/>s.</summary>
    PeerLink = 3,

    /// <summary>
    /// A direct-stream grant: made by the router (keyed by the destination node's session key), handed to the
    /// connecting node, sent by its shim as the first bytes of a LAN connection straight to the destination
    /// agent's direct listener. Source port 0: the connection's own source port is the stream's.
    /// </summary>
    DirectStream = 4,

    /// <summary>
    /// A router's WAN trunk to a peer router: after the reply it carries many stream legs as trunk frames
    /// (<c>Relay/Trunks</c>), each opened with its own leg header inside, so a new inter-site stream costs no
    /// TCP connect and no TLS handshake.
    /// </summary>
    Trunk = 5,
}
