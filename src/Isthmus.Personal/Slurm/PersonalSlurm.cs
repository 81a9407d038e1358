using System.Diagnostics;
using Isthmus.Core;
using Isthmus.Personal.Spec;
using Isthmus.Personal.State;

namespace Isthmus.Personal.Slurm;

/// <summary>
/// The personal Slurm's controller side at the submission host: its files under <c>STATE/slurm</c>, and its
/// client commands (scontrol, sinfo, squeue), which run as programs of the login node so that they reach
/// slurmctld at the login node's VIP.
/// </summary>
public sealed class PersonalSlurm(StateDirectory state, string isthmus)
{
    public string Directory => state.SlurmDirectory;

    public string MungeKey => Path.Combine(Directory, "munge.key");

    /// <summary>
    /// munged insists on a socket directory whose every parent is world-searchable, which a private state
    /// directory (or a 0700 home) is not; so its socket lives in a directory of its own under the temporary
    /// directory, named in state.json and removed by <c>down</c>.
    /// </summary>
    public string MungeDirectory => state.Exists && ClusterState.Load(state).MungeDirectory is { } d ? d : NewMungeDirectory;

    public string MungeSocket => Path.Combine(MungeDirectory, "munged.socket");

    /// <summary>Set by <c>up</c> before <see cref="PrepareAsync"/>.</summary>
    public string NewMungeDirectory { get; set; } = "";

    public string ConfigFile => Path.Combine(Directory, "etc", "slurm.conf");

    /// <summary>Whether slurmctld and slurmd are on this machine's PATH.</summary>
    public static bool Installed() => OnPath("slurmctld") && OnPath("munged") && OnPath("mungekey");

    public static bool OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, name)));

    /// <summary>The environment Slurm's commands need: SLURM_CONF (which names the munge socket too).</summary>
    public Dictionary<string, string> ClientEnvironment() => new() { ["SLURM_CONF"] = ConfigFile, ["ISTHMUS_RUNTIME_DIR"] = state.RuntimeDirectory };

    /// <summary>Creates the munge key (0600) and writes the controller's slurm.conf.</summary>
    public async Task PrepareAsync(string clusterName, string loginVip, int ctldPort, int slurmdPort, CancellationToken cancellationToken)
    {
        foreach (var d in new[] { Directory, MungeDirectory, Path.Combine(Directory, "state"), Path.Combine(Directory, "spool") })
        {
            System.IO.Directory.CreateDirectory(d);
        }

        File.SetUnixFileMode(MungeDirectory, (UnixFileMode)0x1ED);
        if (!File.Exists(MungeKey))
        {
            var result = await RunAsync("mungekey", ["-c", "-k", MungeKey, "-b", "1024"], interposed: false, cancellationToken).ConfigureAwait(false);
            if (result.ExitCode != 0)
            {
                throw new UserException($"mungekey failed: {result.FirstErrorLine()}", 1);
            }
        }

        File.SetUnixFileMode(MungeKey, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        new PersonalSlurmConfig(clusterName, PersonalClusterSpec.LoginNode, loginVip, ctldPort, slurmdPort, Environment.UserName,
            MungeSocket, Path.Combine(Directory, "state"), Path.Combine(Directory, "spool"), Path.Combine(Directory, "slurmctld.log"), null)
            .Write(Path.Combine(Directory, "etc"), controller: true);
    }

    /// <summary>The munged command line of the submission host.</summary>
    public IReadOnlyList<string> MungedCommand() =>
    [
        "munged", "-F", "-S", MungeSocket, "--key-file=" + MungeKey, "--pid-file=" + Path.Combine(MungeDirectory, "munged.pid"),
        "--log-file=" + Path.Combine(Directory, "munged.log"), "--seed-file=" + Path.Combine(MungeDirectory, "munged.seed"),
    ];

    /// <summary>slurmctld as a program of the login node.</summary>
    public IReadOnlyList<string> CtldCommand() => [isthmus, "run", "--node", PersonalClusterSpec.LoginNode, "--", "slurmctld", "-D", "-i", "-f", ConfigFile];

    public async Task<bool> PingAsync(CancellationToken cancellationToken) =>
        (await ScontrolAsync(cancellationToken, "ping").ConfigureAwait(false)).StandardOutput.Contains("is UP", StringComparison.Ordinal);

    /// <summary>The personal nodes and their Slurm state (idle, alloc, mix, drain, down, …, '*' = not responding).</summary>
    public async Task<Dictionary<string, string>> NodeStatesAsync(CancellationToken cancellationToken)
    {
        var result = await ClientAsync("sinfo", ["-h", "-N", "-o", "%N %t"], cancellationToken).ConfigureAwait(false);
        return result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(' ', 2)).Where(p => p.Length == 2).GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.First()[1], StringComparer.Ordinal);
    }

    /// <summary>Personal jobs as squeue lists them.</summary>
    public async Task<List<PersonalJob>> JobsAsync(CancellationToken cancellationToken)
    {
        var result = await ClientAsync("squeue", ["-h", "-o", PersonalJob.SqueueFormat], cancellationToken).ConfigureAwait(false);
        return [.. result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(PersonalJob.Parse).OfType<PersonalJob>()];
    }

    public Task<Sites.ShellResult> ScontrolAsync(CancellationToken cancellationToken, params string[] args) => ClientAsync("scontrol", args, cancellationToken);

    public Task<Sites.ShellResult> ClientAsync(string command, IReadOnlyList<string> args, CancellationToken cancellationToken) =>
        RunAsync(command, args, interposed: true, cancellationToken);

    private async Task<Sites.ShellResult> RunAsync(string command, IReadOnlyList<string> args, bool interposed, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(interposed ? isthmus : command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (interposed)
        {
            foreach (var a in new[] { "run", "--node", PersonalClusterSpec.LoginNode, "--", command })
            {
                info.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in ClientEnvironment())
        {
            info.Environment[k] = v;
        }

        using var process = Process.Start(info) ?? throw new UserException($"cannot start {command}", 1);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new UserException($"{command} did not finish within 60 s", 1);
        }

        return new Sites.ShellResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}
