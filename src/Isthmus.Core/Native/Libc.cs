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

    /// <summary>Sleeps for a relative time on CLOCK_MONOTONIC with the kernel's precision (tens of µs), unlike .NET's millisecond waits.</summary>
    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    public static unsafe partial int ClockNanosleep(int clock, int flags, TimeSpecNative* request, TimeSpecNative* remain);

    public const int ClockMonotonic = 1;

    public const int SigPipe = 13;
    public const int SigSetMask = 2;
}

/// <summary>struct timespec on 64-bit Linux.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
public struct TimeSpecNative
{
    public long Seconds;
    public long Nanoseconds;
}
