using System.Runtime.InteropServices;
using Isthmus.Core;
using Isthmus.Core.Native;
using static Isthmus.Interpose.Seccomp.SeccompNative;

namespace Isthmus.Interpose.Seccomp;

/// <summary>
/// <c>isthmus run --mode seccomp</c>: starts the program through the native launcher (which installs a
/// seccomp filter whose socket calls notify us, then execs the program), stays its parent, answers the
/// trapped calls on worker threads, and exits with the program's exit code once the program has exited and
/// no process of its tree is left under the filter (docs/ARCHITECTURE.md, "seccomp mode").
/// </summary>
public static class SeccompSupervisor
{
    public const string LauncherFileName = "isthmus-seccomp-launch";

    /// <summary>
    /// The launcher's TRAPS bits: sendto (2) and recvfrom (4) when their address argument is non-NULL, for UDP;
    /// sendmsg/sendmmsg (1) and recvmsg/recvmmsg (16) only when asked (<paramref name="messages"/>: every
    /// sendmsg of the program then stops, TCP data included). ISTHMUS_SECCOMP_NO_WAIT_KILLABLE=1 adds 8: the
    /// filter is installed without WAIT_KILLABLE_RECV, as on kernels before 5.19, so tests can exercise the
    /// restart paths on a new kernel.
    /// </summary>
    private static string Traps(bool messages)
    {
        var traps = 2 | 4;
        if (messages)
        {
            traps |= 1 | 16;
        }

        if (Environment.GetEnvironmentVariable("ISTHMUS_SECCOMP_NO_WAIT_KILLABLE") == "1")
        {
            traps |= 8;
        }

        return traps.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public static string LauncherPath()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "native", LauncherFileName);
        return File.Exists(path) ? path
            : throw new UserException($"the seccomp launcher is missing ({path}); rebuild Isthmus with 'dotnet build'", ProgramLauncher.ExitCannotRun);
    }

    /// <summary>Runs the program to completion under the supervisor; returns its exit code (128+N if killed by signal N).</summary>
    public static unsafe int Run(AgentInfo agent, string path, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, bool debug, bool trapMessages = false)
    {
        var refusal = KernelSupport.Check();
        if (refusal is not null)
        {
            throw new UserException(refusal, ProgramLauncher.ExitCannotRun);
        }

        var config = new OverlayConfig(agent);
        var launcher = LauncherPath();
        var fds = stackalloc int[2];
        if (SocketPair(AfUnix, SockStream | SockCloexec, 0, fds) < 0)
        {
            throw new UserException($"socketpair: {Marshal.GetPInvokeErrorMessage(LastError)}", ProgramLauncher.ExitCannotRun);
        }

        using var control = new SafeFd(fds[0]);
        int child;
        using (var childEnd = new SafeFd(fds[1]))
        {
            // The launcher learns its end by number; dup2(fd, fd) in posix_spawn clears FD_CLOEXEC (glibc 2.29+).
            child = Spawn(launcher, [launcher, childEnd.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture), Traps(trapMessages), path, .. argv], environment, childEnd.Fd);
        }

        var hello = stackalloc int[3]; // listener fd number, filter flags, the program's pid
        if (!ReadExactly(control.Fd, hello, 12))
        {
            return Reap(child); // the launcher died before it got anywhere (it printed why)
        }

        if (hello[0] < 0)
        {
            var stage = hello[1] switch { 1 => "PR_SET_PDEATHSIG", 2 => "PR_SET_NO_NEW_PRIVS", _ => "installing the seccomp filter" };
            Reap(child);
            throw new UserException($"--mode seccomp: {stage} failed ({Marshal.GetPInvokeErrorMessage(-hello[0])}); the kernel or a container policy does not allow seccomp user notification here: use --mode preload for dynamically linked programs", ProgramLauncher.ExitCannotRun);
        }

        var program = hello[2];
        SafeFd listener;
        using (var pidfd = new SafeFd(PidfdOpen(program, 0)))
        {
            var fd = pidfd.IsInvalid ? -1 : PidfdGetFd(pidfd.Fd, hello[0]);
            if (fd < 0)
            {
                var e = LastError;
                _ = Libc.Kill(program, 9);
                Reap(child);
                throw new UserException($"--mode seccomp: cannot take the notification fd from the launcher (pidfd_getfd: {Marshal.GetPInvokeErrorMessage(e)}); ptrace restrictions (Yama ptrace_scope 3, or an LSM) forbid it", ProgramLauncher.ExitCannotRun);
            }

            listener = new SafeFd(fd);
        }

        var handlers = new SocketCallHandlers(config, debug);
        var receiver = new Thread(() => ReceiveLoop(listener, handlers)) { IsBackground = true, Name = "seccomp-notify" };
        receiver.Start();

        byte ack = 1;
        _ = Write(control.Fd, &ack, 1); // the launcher closes its listener copy and execs

        // Terminal signals (SIGINT, SIGQUIT) reach the program directly (same process group); the supervisor must
        // survive them so that it can keep answering the program's calls while it shuts down. SIGTERM and SIGHUP
        // sent to the supervisor are passed on to the program.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c => c.Cancel = true);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; _ = Libc.Kill(program, 15); });
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; _ = Libc.Kill(program, 1); });

        // The launcher's watchdog exits as the program did, once the program and all its descendants are gone.
        var code = Reap(child);
        // Descendants that outlive the program stay supervised until they exit too: the listener reports
        // POLLHUP once no process uses the filter any more.
        receiver.Join();
        listener.Dispose();
        return code;
    }

    private static unsafe void ReceiveLoop(SafeFd listener, SocketCallHandlers handlers)
    {
        var fd = listener.Fd;
        while (true)
        {
            var pfd = new PollFd { Fd = fd, Events = PollIn };
            if (Poll(&pfd, 1, -1) < 0)
            {
                if (LastError == EINTR)
                {
                    continue;
                }

                return;
            }

            if ((pfd.REvents & PollIn) == 0)
            {
                if ((pfd.REvents & (PollHup | PollErr | PollNVal)) != 0)
                {
                    return; // no process uses the filter any more
                }

                continue;
            }

            var notif = default(SeccompNotif); // RECV requires a zeroed buffer
            if (Ioctl(fd, IoctlNotifRecv, &notif) < 0)
            {
                // ENOENT: the caller died or was interrupted between poll and RECV.
                continue;
            }

            var call = new TrappedCall(fd, notif);
            if (SocketCallHandlers.MayBlock(call.Syscall))
            {
                new Thread(() => handlers.Handle(call)) { IsBackground = true, Name = "seccomp-call" }.Start();
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(static s => s.Handlers.Handle(s.Call), (Handlers: handlers, Call: call), preferLocal: false);
            }
        }
    }

    private static unsafe bool ReadExactly(int fd, void* buffer, int count)
    {
        var done = 0;
        for (var tries = 0; done < count && tries < 1000; tries++)
        {
            var n = SeccompNative.Read(fd, (byte*)buffer + done, (nuint)(count - done));
            if (n < 0 && LastError == EINTR)
            {
                continue;
            }

            if (n <= 0)
            {
                return false;
            }

            done += (int)n;
        }

        return done == count;
    }

    /// <summary>Waits for the child; its exit code, or 128 + the signal that killed it (the shell's convention).</summary>
    private static unsafe int Reap(int pid)
    {
        int status;
        while (WaitPid(pid, &status, 0) < 0)
        {
            if (LastError != EINTR)
            {
                return ProgramLauncher.ExitCannotRun;
            }
        }

        var signal = status & 0x7F;
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal;
    }

    private static unsafe int Spawn(string path, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, int keepFd)
    {
        using var strings = new NativeStringBlock();
        var actions = strings.Allocate(256); // posix_spawn_file_actions_t is 80 bytes on glibc
        if (PosixSpawnFileActionsInit((void*)actions) != 0)
        {
            throw new UserException("posix_spawn_file_actions: out of memory", ProgramLauncher.ExitCannotRun);
        }

        try
        {
            if (PosixSpawnFileActionsAddDup2((void*)actions, keepFd, keepFd) != 0)
            {
                throw new UserException("posix_spawn_file_actions: out of memory", ProgramLauncher.ExitCannotRun);
            }

            int pid;
            var rc = PosixSpawn(&pid, (byte*)strings.Utf8(path), (void*)actions, null, (byte**)strings.PointerArray(argv), (byte**)strings.Environment(environment));
            return rc == 0 ? pid
                : throw new UserException($"cannot start {path}: {Marshal.GetPInvokeErrorMessage(rc)}", ProgramLauncher.ExitCannotRun);
        }
        finally
        {
            _ = PosixSpawnFileActionsDestroy((void*)actions);
        }
    }
}
