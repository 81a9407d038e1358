using Isthmus.Core.Addressing;

namespace Isthmus.Core.Naming;

/// <summary>
/// The IPv4 name servers of <c>/etc/resolv.conf</c> as a stub resolver reads them: at most three
/// <c>nameserver</c> lines (glibc's MAXNS), and 127.0.0.1 when there are none, as glibc and Go assume.
/// </summary>
public static class ResolverConfig
{
    public const string DefaultPath = "/etc/resolv.conf";
    public const int MaxNameServers = 3;
    public const ushort Port = 53;

    /// <summary>Host-order addresses; a missing or unreadable file means the default.</summary>
    public static IReadOnlyList<uint> ReadNameServers(string path = DefaultPath)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            lines = [];
        }

        return ParseNameServers(lines);
    }

    public static IReadOnlyList<uint> ParseNameServers(IEnumerable<string> lines)
    {
        var servers = new List<uint>();
        foreach (var line in lines)
        {
            var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 2 && fields[0] == "nameserver" && servers.Count < MaxNameServers
                && IPv4.TryParse(fields[1], out var address))
            {
                servers.Add(address);
            }
        }

        return servers.Count > 0 ? servers : [IPv4.Parse("127.0.0.1")];
    }
}
