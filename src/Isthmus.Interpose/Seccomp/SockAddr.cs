using System.Buffers.Binary;

namespace Isthmus.Interpose.Seccomp;

/// <summary>
/// AF_INET and v4-mapped AF_INET6 socket addresses as raw bytes (the layout the kernel and the program
/// use), with addresses and ports in host order on the C# side. Mirrors native/preload/addr.c.
/// </summary>
public static class SockAddr
{
    public const int MaxLength = 128; // sizeof(struct sockaddr_storage)
    public const int InetLength = 16;
    public const int Inet6Length = 28;

    /// <summary>The kernel accepts an AF_INET6 address as short as the RFC 2133 layout (no scope id).</summary>
    public const int Inet6MinLength = 24;

    public static int Family(ReadOnlySpan<byte> sa) => sa.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(sa) : -1;

    /// <summary>Reads ip:port of an AF_INET or ::ffff:a.b.c.d AF_INET6 address; false for anything else.</summary>
    public static bool TryGetV4(ReadOnlySpan<byte> sa, out uint ip, out ushort port)
    {
        ip = 0;
        port = 0;
        var family = Family(sa);
        if (family == SeccompNative.AfInet && sa.Length >= InetLength)
        {
            port = BinaryPrimitives.ReadUInt16BigEndian(sa[2..]);
            ip = BinaryPrimitives.ReadUInt32BigEndian(sa[4..]);
            return true;
        }

        if (family == SeccompNative.AfInet6 && sa.Length >= Inet6MinLength && IsV4Mapped(sa[8..24]))
        {
            port = BinaryPrimitives.ReadUInt16BigEndian(sa[2..]);
            ip = BinaryPrimitives.ReadUInt32BigEndian(sa[20..]);
            return true;
        }

        return false;
    }

    private static bool IsV4Mapped(ReadOnlySpan<byte> a) =>
        a[..10].IndexOfAnyExcept((byte)0) < 0 && a[10] == 0xFF && a[11] == 0xFF;

    /// <summary>Writes ip:port as an AF_INET address, or as ::ffff:ip for an AF_INET6 socket; returns the length.</summary>
    public static int Make(Span<byte> destination, int family, uint ip, ushort port)
    {
        if (family == SeccompNative.AfInet6)
        {
            destination[..Inet6Length].Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(destination, SeccompNative.AfInet6);
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], port);
            destination[18] = 0xFF;
            destination[19] = 0xFF;
            BinaryPrimitives.WriteUInt32BigEndian(destination[20..], ip);
            return Inet6Length;
        }

        destination[..InetLength].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(destination, SeccompNative.AfInet);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], port);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], ip);
        return InetLength;
    }

    /// <summary>Replaces the IPv4 address of an AF_INET or v4-mapped address in place (port kept).</summary>
    public static void SetV4(Span<byte> sa, uint ip)
    {
        if (Family(sa) == SeccompNative.AfInet)
        {
            BinaryPrimitives.WriteUInt32BigEndian(sa[4..], ip);
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(sa[20..], ip);
        }
    }

    /// <summary>True for 0.0.0.0, :: or ::ffff:0.0.0.0; <paramref name="portZero"/> tells whether the port is 0 too.</summary>
    public static bool IsUnspecified(ReadOnlySpan<byte> sa, out bool portZero)
    {
        portZero = false;
        if (TryGetV4(sa, out var ip, out var port))
        {
            portZero = port == 0;
            return ip == 0;
        }

        if (Family(sa) == SeccompNative.AfInet6 && sa.Length >= Inet6MinLength)
        {
            portZero = BinaryPrimitives.ReadUInt16BigEndian(sa[2..]) == 0;
            return sa[8..24].IndexOfAnyExcept((byte)0) < 0;
        }

        return false;
    }
}
