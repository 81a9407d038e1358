using Isthmus.Core.Native;

namespace Isthmus.Interpose.Seccomp;

/// <summary>The socket calls the filter traps, named independently of the architecture's numbering.</summary>
public enum TrappedSyscall
{
    Other,
    Connect,
    Bind,
    Accept,
    Accept4,
    GetSockName,
    GetPeerName,
    SendTo,
    RecvFrom,
    SendMsg,
    SendMmsg,
    RecvMsg,
    RecvMmsg,
}

/// <summary>System call numbers per audit architecture (the launcher's filter checks the architecture).</summary>
public static class SyscallTable
{
    public const uint AuditArchX8664 = 0xC000003E;
    public const uint AuditArchAarch64 = 0xC00000B7;

    public static TrappedSyscall Classify(uint arch, int nr) => arch switch
    {
        AuditArchX8664 => nr switch
        {
            42 => TrappedSyscall.Connect,
            49 => TrappedSyscall.Bind,
            43 => TrappedSyscall.Accept,
            288 => TrappedSyscall.Accept4,
            51 => TrappedSyscall.GetSockName,
            52 => TrappedSyscall.GetPeerName,
            44 => TrappedSyscall.SendTo,
            45 => TrappedSyscall.RecvFrom,
            46 => TrappedSyscall.SendMsg,
            47 => TrappedSyscall.RecvMsg,
            307 => TrappedSyscall.SendMmsg,
            299 => TrappedSyscall.RecvMmsg,
            _ => TrappedSyscall.Other,
        },
        AuditArchAarch64 => nr switch
        {
            203 => TrappedSyscall.Connect,
            200 => TrappedSyscall.Bind,
            202 => TrappedSyscall.Accept,
            242 => TrappedSyscall.Accept4,
            204 => TrappedSyscall.GetSockName,
            205 => TrappedSyscall.GetPeerName,
            206 => TrappedSyscall.SendTo,
            207 => TrappedSyscall.RecvFrom,
            211 => TrappedSyscall.SendMsg,
            212 => TrappedSyscall.RecvMsg,
            269 => TrappedSyscall.SendMmsg,
            243 => TrappedSyscall.RecvMmsg,
            _ => TrappedSyscall.Other,
        },
        _ => TrappedSyscall.Other,
    };
}

/// <summary>
/// One trapped system call of a supervised thread: its arguments, access to the thread's memory and file
/// descriptors, and the one answer it gets. The notification's pid is a thread id; memory access works by
/// thread id, and the fd table is reached through a pidfd of the thread (PIDFD_THREAD, 6.9+) or of its
/// thread group leader (Tgid from /proc/TID/status). Every read of the program's memory or fd table is
/// followed by <see cref="IsValid"/> before acting on it: the thread may have died and its id been reused.
/// </summary>
public sealed unsafe class TrappedCall
{
    private readonly int _listener;
    private int _answered;

    public TrappedCall(int listener, in SeccompNotif notif)
    {
        _listener = listener;
        Id = notif.Id;
        Tid = (int)notif.Pid;
        Syscall = SyscallTable.Classify(notif.Arch, notif.Nr);
        var args = new ulong[6];
        fixed (ulong* a = notif.Args)
        {
            for (var i = 0; i < 6; i++)
            {
                args[i] = a[i];
            }
        }

        Args = args;
    }

    public ulong Id { get; }

    /// <summary>The calling thread's id (in the supervisor's pid namespace).</summary>
    public int Tid { get; }

    public TrappedSyscall Syscall { get; }

    public IReadOnlyList<ulong> Args { get; }

    public bool Answered => Volatile.Read(ref _answered) != 0;

    /// <summary>Set when a handler passed the call to another thread, which will answer it.</summary>
    public bool Deferred { get; set; }

    /// <summary>Whether the call is still waiting for its answer (the thread has not died or been interrupted).</summary>
    public bool IsValid()
    {
        var id = Id;
        return SeccompNative.Ioctl(_listener, SeccompNative.IoctlNotifIdValid, &id) == 0;
    }

    /// <summary>Reads the program's memory; false if any byte is unreadable (the kernel would say EFAULT).</summary>
    public bool TryRead(ulong address, Span<byte> destination)
    {
        if (address == 0)
        {
            return false;
        }

        fixed (byte* d = destination)
        {
            var local = new IoVec { Base = (nint)d, Length = (nuint)destination.Length };
            var remote = new IoVec { Base = (nint)address, Length = (nuint)destination.Length };
            return SeccompNative.ProcessVmReadv(Tid, &local, 1, &remote, 1, 0) == destination.Length;
        }
    }

    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
        {
            return true;
        }

        fixed (byte* s = source)
        {
            var local = new IoVec { Base = (nint)s, Length = (nuint)source.Length };
            var remote = new IoVec { Base = (nint)address, Length = (nuint)source.Length };
            return SeccompNative.ProcessVmWritev(Tid, &local, 1, &remote, 1, 0) == source.Length;
        }
    }

    /// <summary>
    /// A duplicate of the program's descriptor <paramref name="fd"/> (same open file description, so the
    /// socket, its O_NONBLOCK and its state are shared). Null with <paramref name="error"/> set when the fd is
    /// not open (EBADF), the thread is gone (ESRCH), or the program may not be inspected (EPERM: not
    /// dumpable, or Yama).
    /// </summary>
    public SafeFd? TryGetFd(int fd, out int error)
    {
        using var pidfd = OpenPidfd(out error);
        if (pidfd is null)
        {
            return null;
        }

        var dup = SeccompNative.PidfdGetFd(pidfd.Fd, fd);
        if (dup < 0)
        {
            error = SeccompNative.LastError;
            return null;
        }

        var handle = new SafeFd(dup);
        if (!IsValid())
        {
            handle.Dispose();
            error = SeccompNative.ESRCH;
            return null;
        }

        error = 0;
        return handle;
    }

    private static int _pidfdThreadUnsupported;

    private SafeFd? OpenPidfd(out int error)
    {
        error = 0;
        if (Volatile.Read(ref _pidfdThreadUnsupported) == 0)
        {
            var fd = SeccompNative.PidfdOpen(Tid, SeccompNative.PidfdThread);
            if (fd >= 0)
            {
                return new SafeFd(fd);
            }

            error = SeccompNative.LastError;
            if (error != SeccompNative.EINVAL)
            {
                return null;
            }

            Volatile.Write(ref _pidfdThreadUnsupported, 1);
        }

        // Before 6.9 a pidfd names a thread group: open the leader's (the fd table is shared by the threads,
        // unless one of them did unshare(CLONE_FILES), which this cannot follow).
        var tgid = ProcStatus.ThreadGroupOf(Tid);
        if (tgid <= 0)
        {
            error = SeccompNative.ESRCH;
            return null;
        }

        var pidfd = SeccompNative.PidfdOpen(tgid, 0);
        if (pidfd < 0)
        {
            error = SeccompNative.LastError;
            return null;
        }

        return new SafeFd(pidfd);
    }

    /// <summary>Lets the kernel run the call as the program made it (nothing overlay-related).</summary>
    public void Continue() => Send(0, 0, SeccompNative.UserNotifFlagContinue);

    /// <summary>The call returns <paramref name="value"/> (≥ 0).</summary>
    public void Return(long value) => Send(value, 0, 0);

    /// <summary>The call fails with <paramref name="errno"/> (positive).</summary>
    public void Fail(int errno) => Send(0, -errno, 0);

    /// <summary>The call returns <paramref name="result"/> when ≥ 0, else fails with -<paramref name="result"/>.</summary>
    public void Complete(long result)
    {
        if (result >= 0)
        {
            Return(result);
        }
        else
        {
            Fail((int)-result);
        }
    }

    /// <summary>
    /// Installs <paramref name="fd"/> in the program as the call's result (ADDFD with FLAG_SEND: the fd
    /// appears and the call returns its number atomically). Returns the program's fd number, or -errno
    /// (ENOENT: the call is no longer waiting, so the fd was not installed).
    /// </summary>
    public int AddFdAndReturn(SafeFd fd, bool closeOnExec)
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0)
        {
            return -SeccompNative.EINVAL;
        }

        var addfd = new SeccompNotifAddFd
        {
            Id = Id,
            Flags = SeccompNative.AddFdFlagSend,
            SrcFd = (uint)fd.Fd,
            NewFd = 0,
            NewFdFlags = closeOnExec ? (uint)SeccompNative.OCloexec : 0,
        };
        var rc = SeccompNative.Ioctl(_listener, SeccompNative.IoctlNotifAddFd, &addfd);
        return rc >= 0 ? rc : -SeccompNative.LastError;
    }

    private void Send(long value, int error, uint flags)
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0)
        {
            return;
        }

        var resp = new SeccompNotifResp { Id = Id, Val = value, Error = error, Flags = flags };
        // ENOENT: the thread died or a signal interrupted the call meanwhile; nothing is waiting for the answer.
        _ = SeccompNative.Ioctl(_listener, SeccompNative.IoctlNotifSend, &resp);
    }
}

/// <summary>Fields of /proc/TID/status.</summary>
public static class ProcStatus
{
    public static int ThreadGroupOf(int tid)
    {
        var value = Field(tid, "Tgid:");
        return value is not null && int.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var tgid) ? tgid : -1;
    }

    /// <summary>
    /// Whether the thread will take a signal as soon as its trapped call returns: one pending for the thread
    /// itself, or one pending for the process when the thread is the group leader, which is the thread the
    /// kernel picks for a process-directed signal if the leader does not block it (complete_signal). Only
    /// then is answering ERESTARTSYS safe: the thread goes through signal delivery, which restarts the call
    /// or turns it into EINTR. A process-directed signal that the kernel gave another thread does not
    /// interrupt this call, natively either.
    /// </summary>
    public static bool HasDeliverableSignal(int tid)
    {
        try
        {
            ulong pending = 0, shared = 0, blocked = 0, ignored = 0;
            var tgid = -1;
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
            {
                if (line.StartsWith("Tgid:", StringComparison.Ordinal))
                {
                    _ = int.TryParse(line.AsSpan(5).Trim(), System.Globalization.CultureInfo.InvariantCulture, out tgid);
                }
                else if (line.StartsWith("SigPnd:", StringComparison.Ordinal))
                {
                    pending = Hex(line);
                }
                else if (line.StartsWith("ShdPnd:", StringComparison.Ordinal))
                {
                    shared = Hex(line);
                }
                else if (line.StartsWith("SigBlk:", StringComparison.Ordinal))
                {
                    blocked = Hex(line);
                }
                else if (line.StartsWith("SigIgn:", StringComparison.Ordinal))
                {
                    ignored = Hex(line);
                }
            }

            var mine = tgid == tid ? pending | shared : pending;
            return (mine & ~blocked & ~ignored) != 0;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static ulong Hex(string line) =>
        ulong.TryParse(line.AsSpan(line.IndexOf(':', StringComparison.Ordinal) + 1).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;

    private static string? Field(int tid, string name)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
            {
                if (line.StartsWith(name, StringComparison.Ordinal))
                {
                    return line[name.Length..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }
}
