namespace Isthmus.Node.Socks;

/// <summary>The CMD field of a SOCKS5 request (RFC 1928 section 4). Only CONNECT and UDP ASSOCIATE are served.</summary>
internal enum Socks5Command : byte
{
    Connect = 0x01,
    Bind = 0x02,
    UdpAssociate = 0x03,
}
