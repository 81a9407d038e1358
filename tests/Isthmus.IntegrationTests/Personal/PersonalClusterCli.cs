using System.Globalization;
using System.Text.Json;
using Isthmus.IntegrationTests.Overlay;
using Isthmus.IntegrationTests.Topology;
using Xunit;

namespace Isthmus.IntegrationTests.Personal;

/// <summary>
/// The personal-cluster commands as a test drives them: <c>isthmus</c> run in a namespace host with one state
/// directory, plus what the tests read back (status JSON, sinfo, proxies) and the "nothing left behind" checks.
/// </summary>
/// <param name="host">Where the submission host's commands run.</param>
/// <param name="state">The cluster's state directory.</param>
/// <param name="environment">Variables for every command (e.g. a site scheduler's settings).</param>
public sealed class PersonalClusterCli(NetHost host, string state, IReadOnlyDictionary<string, string?>? environment = null)
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    public string State => state;

    public bool IsUp => File.Exists(Path.Combine(state, "state.json"));

    /// <summary>Runs <c>isthmus COMMAND --state STATE REST</c> for <paramref name="args"/> = COMMAND REST.</summary>
    public Task<CommandResult> RunAsync(params string[] args) => RunAsync(Patience, args);

    public Task<CommandResult> RunAsync(TimeSpan timeout, params string[] args)
    {
        var env = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>()) { ["ISTHMUS_STATE"] = null };
        return host.RunAsync(IsthmusPaths.Isthmus, [args[0], "--state", state, .. args[1..]], timeout, env);
    }

    /// <summary>A command line in <c>isthmus shell</c> (the personal Slurm's commands).</summary>
    public Task<CommandResult> ShellAsync(string command) => RunAsync("shell", "-c", command);

    public async Task<JsonElement> StatusAsync()
    {
        var result = await RunAsync("status", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonDocument.Parse(result.StandardOutput).RootElement.Clone();
    }

    /// <summary>The personal Slurm's nodes, sorted.</summary>
    public async Task<List<string>> SinfoAsync()
    {
        var result = await ShellAsync("sinfo -h -N -o %N");
        Assert.True(result.ExitCode == 0, result.ToString());
        return [.. Lines(result.StandardOutput).Distinct().Order(StringComparer.Ordinal)];
    }

    public static List<(string Site, string Node, string Job, string? Vip)> Proxies(JsonElement status) =>
    [
        .. status.GetProperty("sites").EnumerateArray().SelectMany(s => s.GetProperty("proxies").EnumerateArray()
            .Select(p => (s.GetProperty("name").GetString()!, p.GetProperty("node").GetString()!, p.GetProperty("job").GetString()!,
                p.TryGetProperty("vip", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null))),
    ];

    /// <summary>PIDs of the processes the submission host recorded (personal Slurm, routers, manager).</summary>
    public static List<int> RecordedPids(JsonElement status) =>
        [.. status.GetProperty("processes").EnumerateArray().Select(p => p.GetProperty("pid").GetInt32())];

    public static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Alive and not a zombie (a process nobody reaped yet has ended).</summary>
    public static bool Running(int pid)
    {
        try
        {
            var stat = File.ReadAllText(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/stat"));
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Every running process whose command line or environment names <paramref name="dir"/>.</summary>
    public static List<string> ProcessesMentioning(string dir)
    {
        var found = new List<string>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid) || pid == Environment.ProcessId || !Running(pid))
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ');
                var environ = File.ReadAllText(Path.Combine(d, "environ"));
                if (cmdline.Contains(dir, StringComparison.Ordinal) || environ.Contains(dir, StringComparison.Ordinal))
                {
                    found.Add($"{pid}: {cmdline}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return found;
    }
}
