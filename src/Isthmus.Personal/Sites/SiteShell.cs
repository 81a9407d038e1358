using System.Diagnostics;
using System.Text;
using Isthmus.Core;
using Isthmus.Personal.Spec;

namespace Isthmus.Personal.Sites;

/// <summary>
/// Runs <c>sh</c> scripts at a site's head node: a child process for local sites, <c>ssh … sh -c SCRIPT</c> for
/// remote ones. Everything Isthmus does at a site (start its router, submit and cancel proxies, read their
/// state) is such a script, so both kinds of access behave the same and a site needs nothing but a POSIX
/// shell and coreutils. Every call has a timeout, so an unreachable site never hangs a command.
/// </summary>
public abstract class SiteShell
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The site's name, for messages.</summary>
    public required string Site { get; init; }

    /// <summary>What the user would call the head node in a message ("this machine", "user@host:22").</summary>
    public abstract string Describe { get; }

    public static SiteShell For(SiteSpec site) => site.Access == AccessKind.Local
        ? new LocalSiteShell { Site = site.Name }
        : new SshSiteShell(site.Ssh!) { Site = site.Name };

    /// <summary>Runs <paramref name="script"/>; <paramref name="input"/> becomes its stdin (e.g. a tar stream).</summary>
    public async Task<ShellResult> RunAsync(string script, TimeSpan? timeout = null, Stream? input = null, CancellationToken cancellationToken = default)
    {
        var info = StartInfo(script);
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new UserException($"site {Site}: cannot run {info.FileName}: {e.Message}", e, 1);
        }

        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            if (input is not null)
            {
                await input.CopyToAsync(process.StandardInput.BaseStream, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
            // The far end stopped reading: its exit code and stderr say why.
        }
        finally
        {
            process.StandardInput.Close();
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout ?? DefaultTimeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new UserException($"site {Site} ({Describe}) did not answer within {(timeout ?? DefaultTimeout).TotalSeconds:0} s", 1);
        }

        return new ShellResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Runs a script that must succeed; its stdout, or a one-line error with the site and its stderr.</summary>
    public async Task<string> CheckAsync(string what, string script, TimeSpan? timeout = null, Stream? input = null, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(script, timeout, input, cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0 ? result.StandardOutput
            : throw new UserException($"site {Site}: {what} failed (exit {result.ExitCode}): {result.FirstErrorLine()}", 1);
    }

    protected abstract ProcessStartInfo StartInfo(string script);

    /// <summary>Single-quotes <paramref name="text"/> for sh.</summary>
    public static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>Quotes every word and joins them.</summary>
    public static string Command(params IEnumerable<string> words)
    {
        var sb = new StringBuilder();
        foreach (var w in words)
        {
            if (sb.Length > 0)
            {
                sb.Append(' ');
            }

            sb.Append(Quote(w));
        }

        return sb.ToString();
    }
}

/// <summary>The result of a script at a site.</summary>
public sealed record ShellResult(int ExitCode, string StandardOutput, string StandardError)
{
    public string FirstErrorLine()
    {
        var lines = (StandardError + "\n" + StandardOutput).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "no message" : string.Join(" | ", lines.TakeLast(3));
    }
}

/// <summary>The head node is this machine.</summary>
public sealed class LocalSiteShell : SiteShell
{
    public override string Describe => "this machine";

    protected override ProcessStartInfo StartInfo(string script)
    {
        var info = new ProcessStartInfo("/bin/sh");
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        return info;
    }
}

/// <summary>The head node is reached with OpenSSH's client, non-interactively (BatchMode: a key, never a password prompt).</summary>
public sealed class SshSiteShell(SshSpec ssh) : SiteShell
{
    public override string Describe => $"{ssh.Destination}:{ssh.Port}";

    protected override ProcessStartInfo StartInfo(string script)
    {
        var info = new ProcessStartInfo("ssh");
        foreach (var arg in Arguments())
        {
            info.ArgumentList.Add(arg);
        }

        // ssh joins its arguments into one string for the remote login shell: quote the script once.
        info.ArgumentList.Add("sh -c " + Quote(script));
        return info;
    }

    /// <summary>The ssh options before the remote command (also used by <c>isthmus shell</c> hints).</summary>
    public IEnumerable<string> Arguments()
    {
        yield return "-p";
        yield return ssh.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (ssh.Identity is { } identity)
        {
            yield return "-i";
            yield return ExpandHome(identity);
        }

        foreach (var option in (string[])["BatchMode=yes", "ConnectTimeout=20", "ServerAliveInterval=15", .. ssh.Options])
        {
            yield return "-o";
            yield return option;
        }

        yield return ssh.Destination;
    }

    private static string ExpandHome(string path) => path.StartsWith("~/", StringComparison.Ordinal)
        ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..])
        : path;
}
