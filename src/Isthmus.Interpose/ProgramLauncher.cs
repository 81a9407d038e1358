using System.Runtime.InteropServices;
using Isthmus.Core.Native;

namespace Isthmus.Interpose;

/// <summary>
/// Replaces this process with the program (execve), so the program's exit code, signals and process id are
/// its own, with no supervisor in between for the preload mode.
/// </summary>
public static class ProgramLauncher
{
    /// <summary>Exit code when Isthmus itself cannot run the program (the convention of env, docker and ssh).</summary>
    public const int ExitCannotRun = 125;
    public const int ExitNotExecutable = 126;
    public const int ExitNotFound = 127;

    public static string? ResolveExecutable(string command, string? pathVariable)
    {
        if (command.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(command) ? Path.GetFullPath(command) : null;
        }

        foreach (var dir in (pathVariable ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, command);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Never returns on success. On failure returns the exit code to use, after printing why.</summary>
    public static unsafe int Exec(string path, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment)
    {
        // .NET ignores SIGPIPE and may block signals on this thread; exec keeps both, which would change how
        // the program behaves (e.g. `yes | head`). Restore the defaults first.
        Libc.Signal(Libc.SigPipe, 0);
        Span<byte> emptySet = stackalloc byte[128];
        emptySet.Clear();
        fixed (byte* set = emptySet)
        {
            Libc.SigProcMask(Libc.SigSetMask, set, null);
        }

        using var strings = new NativeStringBlock();
        Libc.Execve((byte*)strings.Utf8(path), (byte**)strings.PointerArray(argv), (byte**)strings.Environment(environment));
        var errno = Marshal.GetLastPInvokeError();
        Console.Error.WriteLine($"isthmus: cannot execute {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        return errno == 2 ? ExitNotFound : ExitNotExecutable;
    }
}
