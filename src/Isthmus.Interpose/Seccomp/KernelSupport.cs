using System.Globalization;

namespace Isthmus.Interpose.Seccomp;

/// <summary>
/// What seccomp mode needs from the kernel, checked before anything starts. Minimum: Linux 5.14
/// (user notification 5.0, CONTINUE 5.5, pidfd_open 5.3, pidfd_getfd 5.6, ADDFD 5.9, ADDFD_FLAG_SEND
/// 5.14). From 5.19 (WAIT_KILLABLE_RECV) signals no longer interrupt a call the supervisor is handling,
/// which Go's preemption signals need; before that it still works, with restarts.
/// </summary>
public static class KernelSupport
{
    public static readonly Version Minimum = new(5, 14);

    /// <summary>Null when seccomp mode can run here, else the reason and what to do instead.</summary>
    public static string? Check()
    {
        var release = Read("/proc/sys/kernel/osrelease") ?? Environment.OSVersion.Version.ToString();
        var version = ParseVersion(release);
        if (version is null || version < Minimum)
        {
            return $"--mode seccomp needs Linux {Minimum} or newer (seccomp user notification with ADDFD_FLAG_SEND, pidfd_getfd); this kernel is {release.Trim()}: use --mode preload (dynamically linked programs only)";
        }

        var actions = Read("/proc/sys/kernel/seccomp/actions_avail");
        if (actions is not null && !actions.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Contains("user_notif"))
        {
            return $"--mode seccomp: this kernel ({release.Trim()}) offers no seccomp user notification (actions: {actions.Trim()}): use --mode preload";
        }

        // A functional probe as well: sandboxes (gVisor, some container policies) can report a new release
        // without the calls behind it.
        var pidfd = SeccompNative.PidfdOpen(Environment.ProcessId, 0);
        if (pidfd < 0)
        {
            return $"--mode seccomp: pidfd_open does not work here ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(SeccompNative.LastError)}; kernel {release.Trim()}): use --mode preload";
        }

        _ = SeccompNative.Close(pidfd);

        if (Read("/proc/sys/kernel/yama/ptrace_scope")?.Trim() == "3")
        {
            return "--mode seccomp: Yama ptrace_scope is 3, which forbids the supervisor to read the program's memory and fds (pidfd_getfd, process_vm_readv); set kernel.yama.ptrace_scope to 1 or use --mode preload";
        }

        return null;
    }

    public static Version? ParseVersion(string release)
    {
        var parts = release.Trim().Split('.', '-', '+');
        return parts.Length >= 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            ? new Version(major, minor) : null;
    }

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
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
}
