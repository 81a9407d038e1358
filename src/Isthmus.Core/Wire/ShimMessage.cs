using System.Buffers.Binary;

namespace Isthmus.Core.Wire;

/// <summary>
/// The preload shim's requests to its node agent over the AF_UNIX SOCK_SEQPACKET control socket
/// (see docs/ARCHITECTURE.md). Little-endian integers; addresses and ports in network order on the wire,
/// host order here. A request may carry a payload after its 32-byte header (the name for
/// <see cref="ShimOp.ResolveName"/>); the datagram's length says how long it is.
/// </summary>
public readonly record struct ShimRequest(ShimOp Op, bool NonBlocking, VirtualEndpoint Destination, uint SourceAddress, ushort SourcePort, string? Name = null)
{
    public const int Size = 32;
    public const int MaxPayload = 255;
    public const uint Magic = 0x4D485349; // "ISHM" little-endian
    public const ushort Version = 1;

    public static bool TryParse(ReadOnlySpan<byte> source, out ShimRequest request)
    {
        request = default;
        if (source.Length < Size || source.Length > Size + MaxPayload || BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic
            || BinaryPrimitives.ReadUInt16LittleEndian(source[4..]) != Version)
        {
            return false;
        }

        var op = (ShimOp)BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        if (op is not (ShimOp.Connect or ShimOp.Peer or ShimOp.UdpRoute or ShimOp.ResolveName or ShimOp.ResolveAddress or ShimOp.Direct or ShimOp.Adopt or ShimOp.Listen or ShimOp.DirectPeer))
        {
            return false;
        }

        string? name = null;
        var payload = source[Size..];
        if (op == ShimOp.ResolveName)
        {
            // A DNS name: printable ASCII without spaces, 1..253 characters.
            if (payload.Length is 0 or > 253 || payload.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E))
            {
                return false;
            }

            name = System.Text.Encoding.ASCII.GetString(payload);
        }
        else if (!payload.IsEmpty)
        {
            return false;
        }

        var flags = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        request = new ShimRequest(
            op,
            (flags & 1) != 0,
            new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(source[12..]), BinaryPrimitives.ReadUInt16BigEndian(source[16..])),
            BinaryPrimitives.ReadUInt32BigEndian(source[20..]),
            BinaryPrimitives.ReadUInt16BigEndian(source[18..]),
            name);
        return true;
    }

    /// <summary>The datagram's length: the header plus the name, if any.</summary>
    public int Length => Size + (Name?.Length ?? 0);

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
        if (Name is not null)
        {
            System.Text.Encoding.ASCII.GetBytes(Name, destination[Size..]);
        }
    }
}

public enum ShimOp : ushort
{
    /// <summary>A TCP connect to a VIP: the agent opens the path and expects the program's loopback connection.</summary>
    Connect = 1,

    /// <summary>Which VIP:port a loopback connection (by its source address) was registered for.</summary>
    Peer = 2,

    /// <summary>Make sure datagrams to image(VIP):port reach the overlay (the agent's proxy socket exists).</summary>
    UdpRoute = 3,

    /// <summary>Name → VIP and canonical name.</summary>
    ResolveName = 4,

    /// <summary>VIP → canonical name.</summary>
    ResolveAddress = 5,

    /// <summary>
    /// A TCP connect to a VIP that may go kernel-direct over the LAN: the answer is the destination agent's direct
    /// listener (real address) and the router's grant (a leg header to send first), or EOPNOTSUPP: use CONNECT.
    /// </summary>
    Direct = 6,

    /// <summary>
    /// An accepted connection from an image (src = its peer, dst = its local address): if the agent made it as the
    /// doorbell of a direct stream, the answer carries the stream's socket (SCM_RIGHTS) and its overlay peer; else ENOENT.
    /// </summary>
    Adopt = 7,

    /// <summary>A listener on image(own):port or the wildcard (dst port) in a process whose shim adopts direct streams.</summary>
    Listen = 8,

    /// <summary>
    /// An adopted direct stream by its kernel addresses (src = local, dst = peer), for a process that lost its
    /// peer cache in exec: the overlay peer, and the overlay local port as a 2-byte payload (network order).
    /// </summary>
    DirectPeer = 9,
}

/// <summary>
/// The agent's answer: errno (0 for success), a virtual endpoint (PEER: the peer; RESOLVE_NAME: the VIP)
/// and an optional name (the canonical name for the RESOLVE ops), whose length is at bytes 14..15.
/// </summary>
public readonly record struct ShimResponse(int Error, VirtualEndpoint Endpoint, string? Name = null, byte[]? Data = null)
{
    public const int Size = 16;
    public const int MaxPayload = 255;
    public const uint Magic = 0x52485349; // "ISHR" little-endian

    public int Length => Size + (Name?.Length ?? Data?.Length ?? 0);

    public void Write(Span<byte> destination)
    {
        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], Error);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], Endpoint.Address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[12..], Endpoint.Port);
        if (Name is not null)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(destination[14..], (ushort)Name.Length);
            System.Text.Encoding.ASCII.GetBytes(Name, destination[Size..]);
        }
        else if (Data is not null)
        {
            // DIRECT's grant: binary, in the same payload slot as a name.
            BinaryPrimitives.WriteUInt16LittleEndian(destination[14..], (ushort)Data.Length);
            Data.CopyTo(destination[Size..]);
        }
    }

    public static bool TryParse(ReadOnlySpan<byte> source, out ShimResponse response)
    {
        response = default;
        if (source.Length < Size || BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
        {
            return false;
        }

        var nameLength = BinaryPrimitives.ReadUInt16LittleEndian(source[14..]);
        if (source.Length != Size + nameLength || nameLength > MaxPayload)
        {
            return false;
        }

        response = new ShimResponse(
            BinaryPrimitives.ReadInt32LittleEndian(source[4..]),
            new VirtualEndpoint(BinaryPrimitives.ReadUInt32BigEndian(source[8..]), BinaryPrimitives.ReadUInt16BigEndian(source[12..])),
            nameLength == 0 ? null : System.Text.Encoding.ASCII.GetString(source.Slice(Size, nameLength)));
        return true;
    }
}
