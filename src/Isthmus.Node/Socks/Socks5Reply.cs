using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Wire;

namespace Isthmus.Node.Socks;

/// <summary>Reply frames (RFC 1928 section 6) and the mapping from an overlay dial's end-to-end status.</summary>
internal static class Socks5Reply
{
    /// <summary>
    /// The reply for a failed dial. RFC 1928 has no "timed out" code; 0x06 "TTL expired" is what Tor answers
    /// for a stream timeout, and it keeps a timeout apart from a host that is known to be unreachable (0x04),
    /// which a client may treat as final. Authentication failures and bad requests are our own faults
    /// between hops, not the destination's answer, hence "general failure".
    /// </summary>
    public static Socks5ReplyCode FromLegStatus(LegStatus status) => status switch
    {
        LegStatus.Ok => Socks5ReplyCode.Succeeded,
        LegStatus.Refused => Socks5ReplyCode.ConnectionRefused,
        LegStatus.HostUnreachable => Socks5ReplyCode.HostUnreachable,
        LegStatus.NetworkUnreachable => Socks5ReplyCode.NetworkUnreachable,
        LegStatus.TimedOut => Socks5ReplyCode.TtlExpired,
        _ => Socks5ReplyCode.GeneralFailure,
    };

    /// <summary>A reply with BND.ADDR 0.0.0.0 and BND.PORT 0, for failures (the fields are meaningless then).</summary>
    public static byte[] Failure(Socks5ReplyCode code) => Encode(code, IPAddress.Any, 0);

    /// <summary>VER REP RSV ATYP BND.ADDR BND.PORT, with ATYP 1 or 4 after the address's family.</summary>
    public static byte[] Encode(Socks5ReplyCode code, IPAddress bound, ushort port)
    {
        if (bound.IsIPv4MappedToIPv6)
        {
            bound = bound.MapToIPv4();
        }

        var v6 = bound.AddressFamily == AddressFamily.InterNetworkV6;
        var frame = new byte[4 + (v6 ? 16 : 4) + 2];
        frame[0] = Socks5Handshake.Version;
        frame[1] = (byte)code;
        frame[3] = (byte)(v6 ? Socks5AddressType.IPv6 : Socks5AddressType.IPv4);
        bound.TryWriteBytes(frame.AsSpan(4), out var written);
        frame[4 + written] = (byte)(port >> 8);
        frame[5 + written] = (byte)port;
        return frame;
    }
}
