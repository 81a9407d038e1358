using System.Globalization;

namespace Isthmus.Bench;

/// <summary>
/// Memory of relay processes from <c>/proc</c>: a process's resident set (<c>VmRSS</c>) and the proportional set
/// size of whole process trees (<c>Pss</c> from <c>smaps_rollup</c>), which counts a page shared by N processes
/// as 1/N in each, so relays that fork per connection (socat, sshd) are not counted many times over.
/// </summary>
public static class ProcessMemory
{
    /// <summary>Resident bytes of one process; 0 when it is gone.</summary>
    public static long ResidentBytes(int pid) => Field($"/proc/{pid}/status", "VmRSS:");

    /// <summary>Proportional set size of the trees rooted at <paramref name="roots"/>, in bytes (gone processes count 0).</summary>
    public static long TreePssBytes(IEnumerable<int> roots) =>
        ProcessCpu.Tree(roots).Sum(pid => Field($"/proc/{pid}/smaps_rollup", "Pss:"));

    /// <summary>A "Name:   123 kB" line of a /proc file, in bytes.</summary>
    private static long Field(string path, string name)
    {
        try
        {
            foreach (var line in File.ReadLines(path))
            {
                if (line.StartsWith(name, StringComparison.Ordinal))
                {
                    var parts = line[name.Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }

        return 0;
    }
}
