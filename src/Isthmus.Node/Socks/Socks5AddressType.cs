namespace Isthmus.Node.Socks;

/// <summary>The ATYP field of SOCKS5 requests, replies and UDP headers (RFC 1928 section 5).</summary>
internal enum Socks5AddressType : byte
{
    IPv4 = 0x01,
    DomainName = 0x03,
    IPv6 = 0x04,
}
