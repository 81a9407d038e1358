using Isthmus.Core.Wire;

namespace Isthmus.Node.Socks;

/// <summary>
/// The header in front of every datagram between a SOCKS5 client and its UDP relay (RFC 1928 section 7):
/// RSV(2) FRAG(1) ATYP(1) DST.ADDR DST.PORT DATA.
/// </summary>
internal static class Socks5UdpHeader
{
    /// <summary>The header's length with an IPv4 address, the only form we write.</summary>
    public const int IPv4Length = 10;

    /// <summary>
    /// Parses a client's datagram. Fragments (FRAG != 0) are refused: fragmentation is optional in RFC 1928
    /// and no common client uses it. IPv6 and unknown address types are refused as in requests.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> datagram, out Socks5Destination destination, out int headerLength, out string error)
    {
        destination = default;
        headerLength = 0;
        if (datagram.Length < 4)
        {
            error = $"{datagram.Length}-byte datagram is shorter than a SOCKS5 UDP header";
            return false;
        }

        if (datagram[2] != 0)
        {
            error = $"fragment {datagram[2]} (fragmentation is not supported)";
            return false;
        }

        switch ((Socks5AddressType)datagram[3])
        {
            case Socks5AddressType.IPv4:
                if (datagram.Length < IPv4Length)
                {
                    error = "truncated IPv4 destination";
                    return false;
                }

                destination = Socks5Destination.ForAddress(Socks5Handshake.ReadUInt32(datagram[4..]), Socks5Handshake.ReadPort(datagram[8..]));
                headerLength = IPv4Length;
                break;
            case Socks5AddressType.DomainName:
                var length = datagram.Length > 4 ? datagram[4] : 0;
                if (length == 0 || datagram.Length < 5 + length + 2)
                {
                    error = "empty or truncated destination name";
                    return false;
                }

                var name = Socks5Handshake.DecodeName(datagram.Slice(5, length));
                if (name is null)
                {
                    error = "destination name is not printable ASCII";
                    return false;
                }

                destination = Socks5Destination.ForName(name, Socks5Handshake.ReadPort(datagram[(5 + length)..]));
                headerLength = 5 + length + 2;
                break;
            default:
                error = $"address type {datagram[3]} is not supported";
                return false;
        }

        error = "";
        return true;
    }

    /// <summary>Writes RSV FRAG ATYP=1 ADDR PORT for a datagram from <paramref name="source"/>.</summary>
    public static void WriteIPv4(Span<byte> header, VirtualEndpoint source)
    {
        header[0] = 0;
        header[1] = 0;
        header[2] = 0;
        header[3] = (byte)Socks5AddressType.IPv4;
        header[4] = (byte)(source.Address >> 24);
        header[5] = (byte)(source.Address >> 16);
        header[6] = (byte)(source.Address >> 8);
        header[7] = (byte)source.Address;
        header[8] = (byte)(source.Port >> 8);
        header[9] = (byte)source.Port;
    }
}
