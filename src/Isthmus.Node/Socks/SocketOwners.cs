using System.Net;

namespace Isthmus.Node.Socks;

/// <summary>
/// Finds the uid that owns a local socket from the kernel's tables in this network namespace. Only sockets
/// of this host are listed, so a remote client is never found (and is refused).
/// </summary>
internal static class SocketOwners
{
    private static readonly string[] TcpTables = ["/proc/net/tcp", "/proc/net/tcp6"];
    private static readonly string[] UdpTables = ["/proc/net/udp", "/proc/net/udp6"];

    /// <summary>The owner of the TCP socket at <paramref name="client"/> connected to <paramref name="server"/>, or null.</summary>
    public static uint? TcpOwner(IPEndPoint client, IPEndPoint server)
    {
        // An AF_INET6 client connecting to an IPv4 listener appears in tcp6 with v4-mapped addresses.
        foreach (var table in TcpTables)
        {
            var owner = ProcNetSocketTable.FindTcpOwner(ReadLines(table), client, server);
            if (owner is not null)
            {
                return owner;
            }
        }

        return null;
    }

    /// <summary>The owners of the UDP sockets that could have sent from <paramref name="source"/> (empty if none).</summary>
    public static List<uint> UdpOwners(IPEndPoint source)
    {
        var owners = new List<uint>();
        foreach (var table in UdpTables)
        {
            owners.AddRange(ProcNetSocketTable.FindUdpOwners(ReadLines(table), source));
        }

        return owners;
    }

    private static string[] ReadLines(string path)
    {
        try
        {
            // Read now, not lazily: the table is a snapshot and a missing file (no IPv6) must not throw later.
            return File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
