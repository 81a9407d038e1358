using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;

namespace Isthmus.Node.Socks;

/// <summary>
/// Parses the kernel's socket tables, <c>/proc/net/{tcp,tcp6,udp,udp6}</c>, far enough to learn which uid
/// owns a socket. Lines look like
/// <c>  3: 0100007F:A1B2 0100007F:0438 01 00000000:00000000 00:00000000 00000000  1000 0 123 ...</c>:
/// slot, local address:port, remote address:port, state, queues, timer, retransmits, <b>uid</b>, ....
/// Addresses are the kernel's in-memory 32-bit words printed in hex in the host's byte order (so
/// 127.0.0.1 is <c>0100007F</c> on x86), four words for IPv6; ports are plain hex numbers.
/// </summary>
internal static class ProcNetSocketTable
{
    /// <summary>One socket: its local and remote endpoints (v4-mapped IPv6 turned into IPv4) and owner.</summary>
    public readonly record struct Row(IPEndPoint Local, IPEndPoint Remote, uint Uid);

    /// <summary>The rows that parse; the header line and anything malformed are skipped.</summary>
    public static IEnumerable<Row> Parse(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            if (TryParseRow(line, out var row))
            {
                yield return row;
            }
        }
    }

    public static bool TryParseRow(string line, out Row row)
    {
        row = default;
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 8 || !fields[0].EndsWith(':'))
        {
            return false;
        }

        if (!TryParseEndpoint(fields[1], out var local) || !TryParseEndpoint(fields[2], out var remote)
            || !uint.TryParse(fields[7], NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
        {
            return false;
        }

        row = new Row(local, remote, uid);
        return true;
    }

    /// <summary>The owner of the TCP socket whose local end is <paramref name="local"/> and peer <paramref name="remote"/>.</summary>
    /// <remarks>
    /// Both ends of a loopback connection are in the table; matching local and remote exactly picks the
    /// client's socket, never our accepted one (whose local and remote are the other way round).
    /// </remarks>
    public static uint? FindTcpOwner(IEnumerable<string> lines, IPEndPoint local, IPEndPoint remote)
    {
        local = Normalize(local);
        remote = Normalize(remote);
        foreach (var row in Parse(lines))
        {
            if (row.Local.Equals(local) && row.Remote.Equals(remote))
            {
                return row.Uid;
            }
        }

        return null;
    }

    /// <summary>
    /// The owners of every UDP socket that could have sent from <paramref name="source"/>: bound to that
    /// address or to the wildcard, on that port (several with SO_REUSEPORT).
    /// </summary>
    public static List<uint> FindUdpOwners(IEnumerable<string> lines, IPEndPoint source)
    {
        source = Normalize(source);
        var owners = new List<uint>();
        foreach (var row in Parse(lines))
        {
            if (row.Local.Port == source.Port
                && (row.Local.Address.Equals(source.Address) || row.Local.Address.Equals(IPAddress.Any) || row.Local.Address.Equals(IPAddress.IPv6Any)))
            {
                owners.Add(row.Uid);
            }
        }

        return owners;
    }

    public static IPEndPoint Normalize(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;

    private static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        endpoint = null!;
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon is not (8 or 32) || text.Length != colon + 5
            || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var port))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[colon / 2];
        for (var word = 0; word < colon / 8; word++)
        {
            if (!uint.TryParse(text.AsSpan(word * 8, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }

            // The kernel printed the word as a native integer, so its native bytes are the address bytes.
            MemoryMarshal.Write(bytes[(word * 4)..], in value);
        }

        var address = new IPAddress(bytes);
        endpoint = Normalize(new IPEndPoint(address, port));
        return true;
    }
}
