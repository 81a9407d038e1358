using System.Diagnostics;
using System.Text;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>Output of a finished command.</summary>
public sealed record CommandResult(string Command, int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Throws <see cref="CommandFailedException"/> unless the exit code is 0.</summary>
    public CommandResult EnsureSuccess() => Succeeded ? this : throw new CommandFailedException(this);
}

/// <summary>A command exited non-zero; the message has the command line, exit code, stdout and stderr.</summary>
public sealed class CommandFailedException : Exception
{
    public CommandFailedException(CommandResult result)
        : base(Describe(result)) => Result = result;

    public CommandResult? Result { get; }

    private static string Describe(CommandResult r) =>
        $"command failed (exit {r.ExitCode}): {r.Command}" +
        (r.StandardError.Length > 0 ? $"\nstderr: {r.StandardError.TrimEnd()}" : "") +
        (r.StandardOutput.Length > 0 ? $"\nstdout: {r.StandardOutput.TrimEnd()}" : "");
}

/// <summary>Runs short administrative commands (ip, tc, sysctl) from the test process.</summary>
public static class Shell
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private static readonly string[] SystemDirectories =
        ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary>
    /// Absolute path of a program: a name with a '/' is kept; a bare name is looked up in the system
    /// directories first (so python3 is /usr/bin/python3, not a per-user shim), then in PATH.
    /// Returns null when not found.
    /// </summary>
    public static string? Which(string program)
    {
        ArgumentException.ThrowIfNullOrEmpty(program);
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(program) ? program : null;
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in SystemDirectories.Concat(path.Split(':', StringSplitOptions.RemoveEmptyEntries)))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary><see cref="Which"/>, or the bare name when not found (the exec then reports the error).</summary>
    public static string Resolve(string program) => Which(program) ?? program;

    /// <summary>Runs a command and returns its result whatever the exit code; throws on timeout (after killing it).</summary>
    public static async Task<CommandResult> RunAsync(string program, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var psi = new ProcessStartInfo(Resolve(program))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var commandLine = FormatCommand(program, psi.ArgumentList);
        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CommandFailedException(new CommandResult(commandLine, 127, "", e.Message));
        }

        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // exited meanwhile
            }

            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw new TimeoutException(
                $"command timed out after {(timeout ?? DefaultTimeout).TotalSeconds:0.#} s: {commandLine}\n" +
                $"stdout: {await stdout.ConfigureAwait(false)}\nstderr: {await stderr.ConfigureAwait(false)}");
        }

        return new CommandResult(commandLine, process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Runs a command and throws <see cref="CommandFailedException"/> (command + stderr) unless it exits 0.</summary>
    public static async Task<string> CheckAsync(string program, params string[] args) =>
        (await RunAsync(program, args).ConfigureAwait(false)).EnsureSuccess().StandardOutput;

    internal static string FormatCommand(string program, IEnumerable<string> args)
    {
        var sb = new StringBuilder(program);
        foreach (var a in args)
        {
            sb.Append(' ');
            sb.Append(a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,+@%".Contains(c, StringComparison.Ordinal))
                ? a
                : "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'");
        }

        return sb.ToString();
    }
}
