using System.Text.Json;
using Isthmus.IntegrationTests.Overlay;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Personal;

/// <summary>
/// <c>isthmus up</c> with the local backend, end to end, as a user without root would run it on a laptop:
/// two "sites" on loopback addresses, a local-fork proxy at each, and a personal Slurm (slurmctld on the
/// login node, <c>slurmd -Z</c> in each proxy). Everything runs inside one network namespace of the topology
/// fixture (loopback only, no default route), so nothing can leak to a real network and nothing collides
/// with the host's ports. The product itself needs no root; only the namespace does.
/// </summary>
public sealed class LocalPersonalClusterTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(180);
    private SiteTopology? _topology;
    private string _work = "";

    public async Task InitializeAsync()
    {
        _topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(1, 1));
        _work = Directory.CreateTempSubdirectory("isthmus-up-").FullName;
    }

    public async Task DisposeAsync()
    {
        if (_topology is not null)
        {
            // A failed test may leave the cluster up: take it down before the namespace goes.
            if (File.Exists(Path.Combine(_work, "state", "state.json")))
            {
                await Isthmus(Long, "down", "--state", State);
            }

            await _topology.DisposeAsync();
        }

        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private NetHost Host => _topology!.SiteList[0].Nodes[0];

    private string State => Path.Combine(_work, "state");

    [Fact]
    public async Task Up_Srun_GrowShrink_ProxyEnd_Down_LeavesNothing()
    {
        var file = Path.Combine(_work, "demo.toml");
        await File.WriteAllTextAsync(file, """
            [cluster]
            name = "demo"
            network = "100.64.0.0/16"

            [manager]
            kind = "slurm"

            [sites.a]
            access = "local"
            scheduler = "local"
            min = 1
            max = 3

            [sites.b]
            access = "local"
            scheduler = "local"
            min = 1
            max = 3

            """);

        var mungeBefore = MungeDirectories();
        var up = await Isthmus(Long, "up", file, "--state", State, "--wait", "150");
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Contains("a nodes: a1 ", up.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("b nodes: b1 ", up.StandardOutput, StringComparison.Ordinal);

        var status = await StatusAsync();
        var vips = Nodes(status);
        Assert.Equal(["a1", "b1"], vips.Keys.Order(StringComparer.Ordinal));
        Assert.StartsWith("100.64.", vips["a1"], StringComparison.Ordinal);
        Assert.NotEqual(vips["a1"], vips["b1"]);

        // The acceptance command: one task on each personal node, which prints its node's name.
        var srun = await Isthmus(Long, "shell", "--state", State, "-c", "srun -N2 hostname");
        Assert.True(srun.ExitCode == 0, srun.ToString());
        Assert.Equal(["a1", "b1"], PersonalClusterCli.Lines(srun.StandardOutput).Order(StringComparer.Ordinal));

        // grow: a new proxy at a, a new node in sinfo.
        var grow = await Isthmus(Long, "grow", "a", "1", "--state", State, "--wait", "120");
        Assert.True(grow.ExitCode == 0, grow.ToString());
        Assert.Equal(["a1", "a2", "b1"], await SinfoAsync());

        // A job on a2, then shrink a by 2: the idle a1 and the busy a2 leave; a2's job is requeued, not lost.
        var sbatch = await Isthmus(Long, "shell", "--state", State, "-c", "sbatch --parsable -w a2 -o /dev/null --wrap 'sleep 600'");
        Assert.True(sbatch.ExitCode == 0, sbatch.ToString());
        var job = sbatch.StandardOutput.Trim();
        await Poll.AssertAsync(async () => (await Squeue()).Contains($"{job} RUNNING", StringComparison.Ordinal), Long, $"job {job} runs on a2");
        var shrink = await Isthmus(Long, "shrink", "a", "2", "--state", State);
        Assert.True(shrink.ExitCode == 0, shrink.ToString());
        Assert.Contains($"personal job {job} was running on a2: requeued", shrink.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(["b1"], await SinfoAsync());
        Assert.Contains(job, await Squeue(), StringComparison.Ordinal);
        // The requeued job asks for a2 by name, which will not come back: cancel it (it could never run again).
        (await Isthmus(Long, "shell", "--state", State, "-c", "scancel " + job)).EnsureSuccess();

        // The site ends a proxy by itself (the local scheduler's scancel: SIGTERM to the job): its node leaves the
        // personal cluster, and the manager submits a replacement to keep b at its minimum.
        var b1 = Proxies(await StatusAsync()).Single(p => p.Node == "b1");
        (await Host.RunAsync("/bin/kill", ["-TERM", b1.Job])).EnsureSuccess();
        await Poll.AssertAsync(async () => (await SinfoAsync()).SequenceEqual(["b2"]), Long, "b1 leaves and b2 replaces it", TimeSpan.FromSeconds(1));
        await Poll.AssertAsync(async () => (await Isthmus(Long, "shell", "--state", State, "-c", "srun -N1 -w b2 hostname")).StandardOutput.Trim() == "b2",
            Long, "srun on b2", TimeSpan.FromSeconds(1));

        // down: every process it started ends and every file goes (state directory, munge socket directories).
        var before = await StatusAsync();
        var pids = before.GetProperty("processes").EnumerateArray().Select(p => p.GetProperty("pid").GetInt32())
            .Concat(Proxies(before).Select(p => int.Parse(p.Job, System.Globalization.CultureInfo.InvariantCulture))).ToList();
        var down = await Isthmus(Long, "down", "--state", State);
        output.WriteLine(down.ToString());
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Contains("nothing left behind", down.StandardOutput, StringComparison.Ordinal);
        Assert.False(Directory.Exists(State), "the state directory is removed");
        Assert.DoesNotContain(pids, PersonalClusterCli.Running);
        Assert.Empty(PersonalClusterCli.ProcessesMentioning(_work));
        Assert.Empty(MungeDirectories().Except(mungeBefore));
    }

    /// <summary>
    /// Elasticity (seed 000's agents reacting to load): a personal job that needs more nodes than there are
    /// makes the manager submit proxies (up to max); when it has run, nodes idle past idle_timeout above the
    /// minimum are released again.
    /// </summary>
    [Fact]
    public async Task PendingJob_GrowsToMax_IdleNodes_Released()
    {
        var file = Path.Combine(_work, "elastic.toml");
        await File.WriteAllTextAsync(file, """
            [cluster]
            name = "elastic"
            network = "100.64.0.0/16"
            idle_timeout = 5

            [sites.a]
            min = 1
            max = 2

            [sites.b]
            min = 1
            max = 2

            """);
        var up = await Isthmus(Long, "up", file, "--state", State, "--wait", "150");
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Equal(["a1", "b1"], await SinfoAsync());

        var sbatch = await Isthmus(Long, "shell", "--state", State, "-c", "sbatch --parsable -N4 -o /dev/null --wrap 'srun hostname'");
        Assert.True(sbatch.ExitCode == 0, sbatch.ToString());
        var job = sbatch.StandardOutput.Trim();
        await Poll.AssertAsync(async () => (await SinfoAsync()).SequenceEqual(["a1", "a2", "b1", "b2"]), Long, "the manager grows both sites to max", TimeSpan.FromSeconds(1));
        await Poll.AssertAsync(async () => !(await Squeue()).Contains(job, StringComparison.Ordinal), Long, $"job {job} (4 nodes) ran", TimeSpan.FromSeconds(1));
        await Poll.AssertAsync(async () => (await SinfoAsync()).Count == 2, Long, "idle nodes above min are released", TimeSpan.FromSeconds(1));
        Assert.Equal(2, Proxies(await StatusAsync()).Count);

        var down = await Isthmus(Long, "down", "--state", State);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.False(Directory.Exists(State));
    }

    /// <summary>
    /// A site whose head node does not answer (ssh to a port where nothing listens in this namespace): up
    /// reports it with the site and ssh's reason and exits 1, the other sites come up and run jobs, status
    /// shows why without asking the dead site again, the manager leaves it alone, and down cleans up
    /// everything without reaching it (nothing was ever made there).
    /// </summary>
    [Fact]
    public async Task UnreachableSite_Reported_RestWorks_DownCleansUp()
    {
        var file = Path.Combine(_work, "unreachable.toml");
        await File.WriteAllTextAsync(file, $"""
            [cluster]
            name = "partial"
            network = "100.64.0.0/16"

            [sites.a]
            min = 1
            max = 1

            [sites.b]
            min = 1
            max = 1

            [sites.c]
            access = "ssh"
            scheduler = "slurm"
            min = 1
            max = 1
            wan = "127.0.0.1:7400"
            lan = "127.0.0.9:7401"

            [sites.c.ssh]
            host = "127.0.0.1"
            user = "root"
            port = {ClosedPort}
            identity = "{Path.Combine(_work, "no-such-key")}"

            """);

        var mungeBefore = MungeDirectories();
        var up = await Isthmus(Long, "up", file, "--state", State, "--wait", "150");
        output.WriteLine(up.ToString());
        Assert.Equal(1, up.ExitCode);
        Assert.Matches($@"(?m)^c FAILED: site c: .*port {ClosedPort}: Connection refused", up.StandardOutput);
        Assert.Contains("a nodes: a1 ", up.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("b nodes: b1 ", up.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("is up with 2 nodes, without site c", up.StandardOutput, StringComparison.Ordinal);

        // The rest of the cluster works: a job on the other sites' nodes.
        var srun = await Isthmus(Long, "shell", "--state", State, "-c", "srun -N2 hostname");
        Assert.True(srun.ExitCode == 0, srun.ToString());
        Assert.Equal(["a1", "b1"], PersonalClusterCli.Lines(srun.StandardOutput).Order(StringComparer.Ordinal));

        var c = (await StatusAsync()).GetProperty("sites").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "c");
        Assert.Equal("did not come up", c.GetProperty("router").GetString());
        Assert.Contains("Connection refused", c.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty(c.GetProperty("proxies").EnumerateArray());
        var grow = await Isthmus(Long, "grow", "c", "1", "--state", State);
        Assert.Equal(1, grow.ExitCode);
        Assert.Contains("site c did not come up at 'up'", grow.StandardError, StringComparison.Ordinal);
        // The manager has reconciled by now (every 5 s, and up, srun and status took longer): it did not try c.
        Assert.DoesNotContain("site c", await File.ReadAllTextAsync(Path.Combine(State, "logs", "manager.log")), StringComparison.Ordinal);

        var down = await Isthmus(Long, "down", "--state", State);
        output.WriteLine(down.ToString());
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Contains("c router: never reached at up: nothing to remove there", down.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("nothing left behind", down.StandardOutput, StringComparison.Ordinal);
        Assert.False(Directory.Exists(State), "the state directory is removed");
        Assert.Empty(PersonalClusterCli.ProcessesMentioning(_work));
        Assert.Empty(MungeDirectories().Except(mungeBefore));
    }

    // Nothing listens on a privileged port in the test's fresh namespace (every listener here takes a free,
    // unprivileged one), so ssh's connect is refused at once.
    private const int ClosedPort = 9;

    [Fact]
    public async Task BadFile_OneLineWithFileAndLine_Exit2()
    {
        var file = Path.Combine(_work, "bad.toml");
        await File.WriteAllTextAsync(file, "[cluster]\nname = \"x\"\nnetwork = \"100.64.0.0/16\"\n\n[sites.a]\nscheduler = \"pbs\"\n");
        var result = await Isthmus(Long, "up", file, "--state", State);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"isthmus: {file}:6: scheduler 'pbs' is not known: use \"slurm\", \"sge\" or \"local\" (a fork on the head node)", result.StandardError.Trim());
        Assert.False(Directory.Exists(State));
    }

    private static HashSet<string> MungeDirectories() => [.. Directory.GetDirectories(Path.GetTempPath(), "isthmus-munge-*")];

    private Task<CommandResult> Isthmus(TimeSpan timeout, params string[] args) =>
        Host.RunAsync(IsthmusPaths.Isthmus, args, timeout, new Dictionary<string, string?> { ["ISTHMUS_STATE"] = null });

    private async Task<JsonElement> StatusAsync()
    {
        var result = await Isthmus(Long, "status", "--state", State, "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonDocument.Parse(result.StandardOutput).RootElement.Clone();
    }

    private async Task<List<string>> SinfoAsync()
    {
        var result = await Isthmus(Long, "shell", "--state", State, "-c", "sinfo -h -N -o %N");
        Assert.True(result.ExitCode == 0, result.ToString());
        return [.. PersonalClusterCli.Lines(result.StandardOutput).Distinct().Order(StringComparer.Ordinal)];
    }

    private async Task<string> Squeue() =>
        (await Isthmus(Long, "shell", "--state", State, "-c", "squeue -h -o '%A %T'")).StandardOutput;

    private static Dictionary<string, string> Nodes(JsonElement status) =>
        Proxies(status).Where(p => p.Vip is not null).ToDictionary(p => p.Node, p => p.Vip!);

    private static List<(string Node, string Job, string? Vip)> Proxies(JsonElement status) =>
    [
        .. status.GetProperty("sites").EnumerateArray().SelectMany(s => s.GetProperty("proxies").EnumerateArray())
            .Select(p => (p.GetProperty("node").GetString()!, p.GetProperty("job").GetString()!,
                p.TryGetProperty("vip", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null)),
    ];
}
