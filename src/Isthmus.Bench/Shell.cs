using System.Diagnostics;

namespace Isthmus.Bench;

/// <summary>The output of a short command run to completion.</summary>
public sealed record CommandOutput(int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;
}

/// <summary>Runs short commands (ip, tc, ssh-keygen, a client of one measurement) to completion, with a time limit.</summary>
public static class Shell
{
    public static async Task<CommandOutput> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        using var process = Process.Start(info) ?? throw new BenchException($"cannot start {file}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Only this child, by its PID: a client that hangs must not hold the whole run.
            try
            {
                process.Kill();
            }
            catch (InvalidOperationException)
            {
            }

            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return new CommandOutput(-1, await stdout.ConfigureAwait(false), (await stderr.ConfigureAwait(false)) + $"\n(killed after {timeout.TotalSeconds:0} s)");
        }

        return new CommandOutput(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Runs a command that must succeed (topology set-up); throws with its stderr otherwise.</summary>
    public static async Task<string> CheckAsync(string file, params string[] args)
    {
        var r = await RunAsync(file, args, TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            throw new BenchException($"'{file} {string.Join(' ', args)}' failed (exit {r.ExitCode}): {r.StandardError.Trim()}");
        }

        return r.StandardOutput;
    }

    /// <summary>The full path of a program on PATH, or null.</summary>
    public static string? Which(string name) =>
        name.Contains('/', StringComparison.Ordinal) ? (File.Exists(name) ? name : null)
        : (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
            .Concat(["/usr/sbin", "/sbin"]).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
