using System.Globalization;
using Isthmus.Personal.State;

namespace Isthmus.Personal.Sites;

/// <summary>
/// Background processes at a head node, started and stopped with shell scripts (<see cref="SiteShell"/>). A
/// process is known by its PID and its start time, so a PID the kernel reused for something else is never
/// signalled; a zombie counts as gone.
/// </summary>
public static class SiteProcesses
{
    // Field 22 of /proc/PID/stat is the start time; field 3 the state (Z: a zombie nobody reaped yet). The
    // programs Isthmus starts have no space in their name, so splitting on spaces is safe for them.
    private const string AliveFunction = "alive() { [ \"$(awk '{ if ($3 != \"Z\") print $22 }' /proc/$1/stat 2>/dev/null)\" = \"$2\" ]; }\n";

    /// <summary>
    /// Starts <paramref name="argv"/> in a new session (<c>setsid</c>: no terminal, not in the caller's process
    /// group, so Ctrl-C of <c>up</c> does not reach it), stdin from /dev/null, stdout and stderr to <paramref name="log"/>.
    /// </summary>
    public static async Task<ProcessRecord> StartAsync(SiteShell shell, string role, string workDir, string log,
        IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        // env, then setsid, exec in the same process (the background child of sh is no group leader, so setsid
        // does not fork): $! is the program's own PID.
        var env = string.Join(' ', environment.Select(e => SiteShell.Quote(e.Key + "=" + e.Value)));
        var script = $$"""
            mkdir -p {{SiteShell.Quote(workDir)}} {{SiteShell.Quote(Path.GetDirectoryName(log)!)}} && cd {{SiteShell.Quote(workDir)}} || exit 1
            env {{env}} setsid {{SiteShell.Command(argv)}} >>{{SiteShell.Quote(log)}} 2>&1 </dev/null &
            p=$!
            echo "$p $(awk '{print $22}' /proc/$p/stat)"
            """;
        var output = await shell.CheckAsync($"starting {role}", script, cancellationToken: cancellationToken).ConfigureAwait(false);
        var parts = output.Trim().Split(' ');
        if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(parts[1], CultureInfo.InvariantCulture, out var start))
        {
            throw new Core.UserException($"site {shell.Site}: starting {role} printed '{output.Trim()}', not 'PID START'", 1);
        }

        return new ProcessRecord { Role = role, Pid = pid, StartTicks = start, Log = log };
    }

    /// <summary>Which of <paramref name="processes"/> still run.</summary>
    public static async Task<HashSet<int>> AliveAsync(SiteShell shell, IEnumerable<(int Pid, long Start)> processes, CancellationToken cancellationToken)
    {
        var list = processes.ToList();
        if (list.Count == 0)
        {
            return [];
        }

        var script = AliveFunction + string.Concat(list.Select(p => string.Create(CultureInfo.InvariantCulture, $"alive {p.Pid} {p.Start} && echo {p.Pid}\n"))) + "exit 0\n";
        var output = await shell.CheckAsync("checking processes", script, cancellationToken: cancellationToken).ConfigureAwait(false);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l.Trim(), CultureInfo.InvariantCulture))];
    }

    /// <summary>SIGTERM, up to <paramref name="grace"/> for it to exit, then SIGKILL. Succeeds when it is gone (or was).</summary>
    public static Task StopAsync(SiteShell shell, ProcessRecord process, TimeSpan grace, CancellationToken cancellationToken) =>
        StopAsync(shell, process.Role, process.Pid, process.StartTicks, grace, cancellationToken);

    public static async Task StopAsync(SiteShell shell, string role, int pid, long start, TimeSpan grace, CancellationToken cancellationToken)
    {
        var tenths = (int)Math.Ceiling(grace.TotalSeconds * 10);
        // The process was started with setsid, so it leads its own process group. SIGTERM goes to it alone, so
        // that it can stop its children in order (a proxy leaves the personal Slurm while its munged still
        // runs); SIGKILL after the grace goes to the whole group, so nothing it could not stop stays behind.
        var script = AliveFunction + string.Create(CultureInfo.InvariantCulture, $$"""
            alive {{pid}} {{start}} || exit 0
            kill -TERM {{pid}}
            i=0; while alive {{pid}} {{start}} && [ $i -lt {{tenths}} ]; do sleep 0.1; i=$((i+1)); done
            alive {{pid}} {{start}} && kill -KILL -- -{{pid}} 2>/dev/null
            kill -0 -- -{{pid}} 2>/dev/null && kill -KILL -- -{{pid}} 2>/dev/null
            i=0; while alive {{pid}} {{start}} && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
            alive {{pid}} {{start}} && { echo "{{role}} (pid {{pid}}) does not exit" >&2; exit 1; }
            exit 0
            """);
        await shell.CheckAsync($"stopping {role}", script, grace + TimeSpan.FromSeconds(30), cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}
