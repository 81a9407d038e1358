using System.Globalization;
using System.Runtime.InteropServices;

namespace Isthmus.Bench;

/// <summary>
/// CPU time of relay processes from <c>/proc/PID/stat</c>: utime + stime of each process of the trees rooted
/// at the given PIDs, plus cutime + cstime (children already reaped, e.g. socat's forked relays and sshd's
/// per-connection children), so a before/after difference counts every process that relayed bytes.
/// </summary>
public static partial class ProcessCpu
{
    private static readonly double TicksPerSecond = ClockTicks();

    /// <summary>Total CPU seconds used so far by the trees rooted at <paramref name="roots"/> (gone roots count 0).</summary>
    public static double TreeSeconds(IEnumerable<int> roots)
    {
        var stats = Snapshot();
        return Walk(stats, roots).Sum(pid => stats[pid].Ticks) / TicksPerSecond;
    }

    /// <summary>Every live process of the trees rooted at <paramref name="roots"/>, roots included.</summary>
    public static IReadOnlyList<int> Tree(IEnumerable<int> roots) => Walk(Snapshot(), roots);

    private static Dictionary<int, (int Parent, long Ticks)> Snapshot()
    {
        var stats = new Dictionary<int, (int Parent, long Ticks)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid) && Read(pid) is { } s)
            {
                stats[pid] = s;
            }
        }

        return stats;
    }

    private static List<int> Walk(Dictionary<int, (int Parent, long Ticks)> stats, IEnumerable<int> roots)
    {
        var children = stats.GroupBy(s => s.Value.Parent).ToDictionary(g => g.Key, g => g.Select(s => s.Key).ToList());
        var seen = new HashSet<int>();
        var stack = new Stack<int>(roots.Where(stats.ContainsKey));
        var tree = new List<int>();
        while (stack.Count > 0)
        {
            var pid = stack.Pop();
            if (!seen.Add(pid))
            {
                continue;
            }

            tree.Add(pid);
            foreach (var child in children.GetValueOrDefault(pid) ?? [])
            {
                stack.Push(child);
            }
        }

        return tree;
    }

    private static (int Parent, long Ticks)? Read(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
        var f = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        static long L(string s) => long.Parse(s, CultureInfo.InvariantCulture);
        return (int.Parse(f[1], CultureInfo.InvariantCulture), L(f[11]) + L(f[12]) + L(f[13]) + L(f[14]));
    }

    private static double ClockTicks()
    {
        var t = SysConf(2 /* _SC_CLK_TCK */);
        return t > 0 ? t : 100;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);
}
