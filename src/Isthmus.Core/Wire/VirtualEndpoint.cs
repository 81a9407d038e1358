using System.Globalization;

namespace Isthmus.Core.Wire;

/// <summary>A virtual (overlay) IPv4 address and port; the address is host-order.</summary>
public readonly record struct VirtualEndpoint(uint Address, ushort Port)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Address >> 24}.{(Address >> 16) & 0xFF}.{(Address >> 8) & 0xFF}.{Address & 0xFF}:{Port}");
}
