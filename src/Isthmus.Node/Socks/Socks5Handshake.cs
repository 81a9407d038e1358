using System.Net.Sockets;
using System.Text;
using Isthmus.Core.Wire;

namespace Isthmus.Node.Socks;

/// <summary>
/// Reads the client's side of the SOCKS5 handshake (RFC 1928 sections 3 and 4) from a socket. Every read asks
/// for exactly the bytes the frame still needs, so bytes a client pipelines after its request (optimistic
/// data) stay in the socket for the relay. Framing errors throw <see cref="ProtocolException"/>; what is
/// well framed but not served (IPv6, BIND) is returned for the server to answer.
/// </summary>
internal static class Socks5Handshake
{
    public const byte Version = 5;
    public const byte NoAuthentication = 0x00;
    public const byte NoAcceptableMethods = 0xFF;

    /// <summary>The largest frame the client sends: a request with a 255-byte name (4 + 1 + 255 + 2).</summary>
    public const int MaxFrameLength = 262;

    /// <summary>Reads VER NMETHODS METHODS; answers whether the no-authentication method was offered.</summary>
    public static async Task<bool> ReadGreetingAsync(Socket client, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await ReadExactAsync(client, buffer[..2], "greeting", cancellationToken).ConfigureAwait(false);
        var version = buffer.Span[0];
        if (version != Version)
        {
            throw new ProtocolException($"greeting has version {version}, not 5 (a SOCKS4 or non-SOCKS client?)");
        }

        var count = buffer.Span[1];
        if (count == 0)
        {
            throw new ProtocolException("greeting offers no authentication method");
        }

        await ReadExactAsync(client, buffer[..count], "greeting's method list", cancellationToken).ConfigureAwait(false);
        return buffer.Span[..count].Contains(NoAuthentication);
    }

    /// <summary>Reads VER CMD RSV ATYP DST.ADDR DST.PORT. The command byte is returned as sent (it may be unknown).</summary>
    public static async Task<(Socks5Command Command, Socks5Destination Destination)> ReadRequestAsync(
        Socket client, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await ReadExactAsync(client, buffer[..4], "request", cancellationToken).ConfigureAwait(false);
        var version = buffer.Span[0];
        if (version != Version)
        {
            throw new ProtocolException($"request has version {version}, not 5");
        }

        var command = (Socks5Command)buffer.Span[1];
        var type = (Socks5AddressType)buffer.Span[3];
        switch (type)
        {
            case Socks5AddressType.IPv4:
                await ReadExactAsync(client, buffer[..6], "IPv4 destination", cancellationToken).ConfigureAwait(false);
                return (command, Socks5Destination.ForAddress(ReadUInt32(buffer.Span), ReadPort(buffer.Span[4..])));
            case Socks5AddressType.IPv6:
                // Read it whole so the refusal is not lost to a reset from unread bytes.
                await ReadExactAsync(client, buffer[..18], "IPv6 destination", cancellationToken).ConfigureAwait(false);
                return (command, new Socks5Destination(type, 0, null, ReadPort(buffer.Span[16..])));
            case Socks5AddressType.DomainName:
                await ReadExactAsync(client, buffer[..1], "name length", cancellationToken).ConfigureAwait(false);
                var length = buffer.Span[0];
                if (length == 0)
                {
                    throw new ProtocolException("request names an empty host");
                }

                await ReadExactAsync(client, buffer[..(length + 2)], "destination name", cancellationToken).ConfigureAwait(false);
                var name = DecodeName(buffer.Span[..length])
                    ?? throw new ProtocolException("destination name is not printable ASCII");
                return (command, Socks5Destination.ForName(name, ReadPort(buffer.Span[length..])));
            default:
                // Unknown ATYP: its length is unknown too, so nothing more can be read; the server answers 0x08.
                return (command, new Socks5Destination(type, 0, null, 0));
        }
    }

    /// <summary>
    /// Host names are ASCII (IDNA is the client's business); anything else, including NUL and spaces, would
    /// only ever be an attack on our log lines or the directory lookup.
    /// </summary>
    public static string? DecodeName(ReadOnlySpan<byte> raw)
    {
        foreach (var b in raw)
        {
            if (b is <= 0x20 or >= 0x7F)
            {
                return null;
            }
        }

        return Encoding.ASCII.GetString(raw);
    }

    public static uint ReadUInt32(ReadOnlySpan<byte> bytes) =>
        (uint)bytes[0] << 24 | (uint)bytes[1] << 16 | (uint)bytes[2] << 8 | bytes[3];

    public static ushort ReadPort(ReadOnlySpan<byte> bytes) => (ushort)(bytes[0] << 8 | bytes[1]);

    private static async Task ReadExactAsync(Socket client, Memory<byte> buffer, string what, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await client.ReceiveAsync(buffer[read..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new ProtocolException(read == 0 ? $"client closed before its {what}" : $"client closed inside its {what} ({read} of {buffer.Length} bytes)");
            }

            read += n;
        }
    }
}
