using System.Runtime.InteropServices;

using Isthmus.Core.Native;

namespace Isthmus.Interpose.Seccomp;

/// <summary>A file descriptor of this process, closed exactly once.</summary>
public sealed class SafeFd : SafeHandle
{
    public SafeFd()
        : base(-1, ownsHandle: true)
    {
    }

    public SafeFd(int fd)
        : base(-1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle == -1;

    /// <summary>The descriptor number (valid while this handle is open).</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => SeccompNative.Close((int)handle) == 0;
}

/// <summary>struct seccomp_notif (linux/seccomp.h): 80 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SeccompNotif
{
    public ulong Id;
    public uint Pid;
    public uint Flags;
    public int Nr;
    public uint Arch;
    public ulong InstructionPointer;
    public fixed ulong Args[6];
}

/// <summary>struct seccomp_notif_resp: 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SeccompNotifResp
{
    public ulong Id;
    public long Val;
    public int Error;
    public uint Flags;
}

/// <summary>struct seccomp_notif_addfd: 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SeccompNotifAddFd
{
    public ulong Id;
    public uint Flags;
    public uint SrcFd;
    public uint NewFd;
    public uint NewFdFlags;
}

[StructLayout(LayoutKind.Sequential)]
public struct PollFd
{
    public int Fd;
    public short Events;
    public short REvents;
}

/// <summary>
/// The kernel interfaces of the seccomp supervisor: the user-notification ioctls, pidfds, cross-process
/// memory access, and the plain socket calls it makes on duplicates of the program's sockets. Every call
/// sets the last P/Invoke error (read it with <see cref="Marshal.GetLastPInvokeError"/>).
/// </summary>
public static unsafe partial class SeccompNative
{
    // ioctl request numbers (_IOWR('!', 0, struct seccomp_notif) etc.; checked against linux/seccomp.h).
    public const ulong IoctlNotifRecv = 0xC0502100;
    public const ulong IoctlNotifSend = 0xC0182101;
    public const ulong IoctlNotifIdValid = 0x40082102;
    public const ulong IoctlNotifAddFd = 0x40182103;

    public const uint UserNotifFlagContinue = 1;
    public const uint AddFdFlagSend = 2;
    public const ulong FilterFlagWaitKillableRecv = 1 << 5;

    // Syscall numbers shared by x86_64 and aarch64 (the unified table from 5.x on).
    private const long SysPidfdOpen = 434;
    private const long SysPidfdGetFd = 438;
    public const uint PidfdThread = 0x80; // O_EXCL: 6.9+

    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EFAULT = 14, EINVAL = 22, EMFILE = 24, ENFILE = 23, ENOSYS = 38, ENOTSOCK = 88, EOPNOTSUPP = 95,
        EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENETUNREACH = 101, ENOBUFS = 105, EISCONN = 106, ETIMEDOUT = 110,
        EALREADY = 114, EINPROGRESS = 115;

    /// <summary>The kernel's "restart this call" code: returned from a trapped call with a signal pending, the
    /// kernel restarts the call (SA_RESTART or no handler) or turns it into EINTR, as natively.</summary>
    public const int ERESTARTSYS = 512;

    public const int AfUnix = 1, AfInet = 2, AfInet6 = 10;
    public const int SockStream = 1, SockDgram = 2;
    public const int SockNonBlock = 0x800, SockCloexec = 0x80000;
    public const int ONonBlock = 0x800, OCloexec = 0x80000;
    public const int SolSocket = 1, SoReuseAddr = 2, SoType = 3, SoAcceptConn = 30, SoProtocol = 38, SoDomain = 39, SoCookie = 57;
    public const int IpProtoUdp = 17, IpProtoUdpLite = 136, IpProtoIp = 0, IpPktInfo = 8, SoRcvTimeo = 20, MsgDontWait = 0x40, EMSGSIZE = 90;
    public const int IpProtoTcp = 6, IpProtoIpv6 = 41, IpProtoMptcp = 262, Ipv6V6Only = 26, TcpInfo = 11;
    public const int FGetFl = 3;
    public const short PollIn = 0x1, PollErr = 0x8, PollHup = 0x10, PollNVal = 0x20;
    public const int WNoHang = 1;

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* arg);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3);

    public static int PidfdOpen(int pid, uint flags) => (int)Syscall(SysPidfdOpen, pid, flags, 0);

    public static int PidfdGetFd(int pidfd, int targetFd) => (int)Syscall(SysPidfdGetFd, pidfd, targetFd, 0);

    [LibraryImport("libc", EntryPoint = "process_vm_readv", SetLastError = true)]
    public static partial nint ProcessVmReadv(int pid, IoVec* local, nuint localCount, IoVec* remote, nuint remoteCount, nuint flags);

    [LibraryImport("libc", EntryPoint = "process_vm_writev", SetLastError = true)]
    public static partial nint ProcessVmWritev(int pid, IoVec* local, nuint localCount, IoVec* remote, nuint remoteCount, nuint flags);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "getpeername", SetLastError = true)]
    public static partial int GetPeerName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, byte* address, uint length);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, byte* address, uint length);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, byte* address, uint* length, int flags);

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "recvfrom", SetLastError = true)]
    public static partial nint RecvFrom(int fd, byte* buffer, nuint length, int flags, byte* address, uint* addressLength);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    [LibraryImport("libc", EntryPoint = "posix_spawn", SetLastError = true)]
    public static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int PosixSpawnFileActionsInit(void* fileActions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int PosixSpawnFileActionsAddDup2(void* fileActions, int fd, int newFd);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int PosixSpawnFileActionsDestroy(void* fileActions);

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>getsockopt for an int option; false (errno in <see cref="LastError"/>) on failure.</summary>
    public static bool TryGetIntOption(int fd, int level, int name, out int value)
    {
        int v = 0;
        uint len = sizeof(int);
        var ok = GetSockOpt(fd, level, name, &v, &len) == 0;
        value = v;
        return ok;
    }

    /// <summary>The kernel's socket cookie (never reused while the kernel runs), or 0.</summary>
    public static ulong Cookie(int fd)
    {
        ulong c = 0;
        uint len = sizeof(ulong);
        return GetSockOpt(fd, SolSocket, SoCookie, &c, &len) == 0 && len == sizeof(ulong) ? c : 0;
    }
}
