using System.Runtime.InteropServices;

namespace Isthmus.Core.Native;

/// <summary>The few libc calls .NET does not expose.</summary>
public static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "getuid")]
    public static partial uint GetUid();

    [LibraryImport("libc", EntryPoint = "execve", SetLastError = true)]
    public static unsafe partial int Execve(byte* path, byte** argv, byte** envp);

    [LibraryImport("libc", EntryPoint = "signal")]
    public static partial nint Signal(int signum, nint handler);

    [LibraryImport("libc", EntryPoint = "sigprocmask", SetLastError = true)]
    public static unsafe partial int SigProcMask(int how, byte* set, byte* oldset);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(Microsoft.Win32.SafeHandles.SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    public static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    public static partial int SetRLimit(int resource, in RLimit limit);

    public const int RLimitNoFile = 7;

    /// <summary>Sleeps for a relative time on CLOCK_MONOTONIC with the kernel's precision (tens of µs), unlike .NET's millisecond waits.</summary>
    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    public static unsafe partial int ClockNanosleep(int clock, int flags, TimeSpecNative* request, TimeSpecNative* remain);

    public const int ClockMonotonic = 1;

    public const int SigPipe = 13;

    /// <summary>open(2): read-write, close-on-exec, an unnamed file in the directory (O_TMPFILE includes O_DIRECTORY).</summary>
    public const int ORdWr = 2, OCloExec = 0x80000, OTmpFile = 0x410000;

    /// <summary>fallocate(2): free the range's blocks, keep the file's size.</summary>
    public const int FallocKeepSize = 1, FallocPunchHole = 2;

    public const int EOpNotSupp = 95, EIsDir = 21, ENoSpc = 28;
    public const int SigSetMask = 2;
}

/// <summary>struct rlimit on 64-bit Linux.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
public struct RLimit
{
    public ulong Current;
    public ulong Maximum;
}

/// <summary>struct timespec on 64-bit Linux.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
public struct TimeSpecNative
{
    public long Seconds;
    public long Nanoseconds;
}
