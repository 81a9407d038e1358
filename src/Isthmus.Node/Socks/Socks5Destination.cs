using Isthmus.Core.Addressing;

namespace Isthmus.Node.Socks;

/// <summary>
/// A destination as the client wrote it: an IPv4 address (host order), a name, or an address type we do not
/// serve (IPv6, unknown). Resolution to a VIP is the server's job, so a request can be parsed whole before
/// any answer is chosen.
/// </summary>
internal readonly record struct Socks5Destination(Socks5AddressType Type, uint Address, string? Name, ushort Port)
{
    public static Socks5Destination ForAddress(uint address, ushort port) => new(Socks5AddressType.IPv4, address, null, port);

    public static Socks5Destination ForName(string name, ushort port) => new(Socks5AddressType.DomainName, 0, name, port);

    public override string ToString() => Type switch
    {
        Socks5AddressType.IPv4 => $"{IPv4.Format(Address)}:{Port}",
        Socks5AddressType.DomainName => $"{Name}:{Port}",
        _ => $"(address type {(byte)Type}):{Port}",
    };
}
