using System.Globalization;
using System.Runtime.InteropServices;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>Signal numbers (Linux) for <see cref="HostProcess.Signal"/>.</summary>
public static class Signals
{
    public const int Hangup = 1;
    public const int Interrupt = 2;
    public const int Kill = 9;
    public const int Terminate = 15;
}

/// <summary>Reads /proc and sends signals; used to find and stop the process groups the fixture created.</summary>
internal static partial class ProcFs
{
    /// <summary>Fields of /proc/PID/stat the fixture needs.</summary>
    internal readonly record struct ProcStat(int Pid, char State, int ProcessGroup, int Session, ulong StartTime)
    {
        public bool IsZombie => State is 'Z' or 'X';
    }

    internal static ProcStat? ReadStat(int pid)
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

        // "pid (comm) S ppid pgrp session ... starttime(22nd field)"; comm may contain spaces and ')'.
        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        var f = text[(close + 2)..].Split(' ');
        if (f.Length < 20)
        {
            return null;
        }

        return new ProcStat(
            pid,
            f[0][0],
            int.Parse(f[2], CultureInfo.InvariantCulture),
            int.Parse(f[3], CultureInfo.InvariantCulture),
            ulong.Parse(f[19], CultureInfo.InvariantCulture));
    }

    internal static IEnumerable<ProcStat> All()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) &&
                ReadStat(pid) is { } stat)
            {
                yield return stat;
            }
        }
    }

    /// <summary>Live (not zombie) processes whose process group is <paramref name="pgid"/>.</summary>
    internal static List<int> GroupMembers(int pgid) =>
        [.. All().Where(p => p.ProcessGroup == pgid && !p.IsZombie).Select(p => p.Pid)];

    /// <summary>True when <paramref name="pid"/> exists and is not a zombie.</summary>
    internal static bool IsAlive(int pid) => ReadStat(pid) is { IsZombie: false };

    /// <summary>"net:[4026532…]" for the network namespace of <paramref name="pid"/>, or null.</summary>
    internal static string? NetNamespaceOf(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/net").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>kill(-pgid, sig). True when delivered to at least one process.</summary>
    internal static bool SignalGroup(int pgid, int signal)
    {
        if (pgid <= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(pgid), pgid, "refusing to signal this process group");
        }

        return SysKill(-pgid, signal) == 0;
    }

    /// <summary>kill(pid, sig) of one process.</summary>
    internal static bool SignalProcess(int pid, int signal)
    {
        if (pid <= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(pid), pid, "refusing to signal this process");
        }

        return SysKill(pid, signal) == 0;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);
}
