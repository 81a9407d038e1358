using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Personal;

/// <summary>
/// A site whose scheduler is Son of Grid Engine: a real sge_qmaster and sge_execd (Debian's gridengine 8.1.9,
/// private cell, spool and ports) in the test's namespace, beside a local-fork site. <c>isthmus up</c> submits
/// site a's proxy with qsub; its node joins the personal Slurm next to site b's; a proxy that Grid Engine
/// itself deletes (qdel: SIGUSR2, then SIGKILL after the queue's notify time) drains and leaves the personal
/// cluster; <c>down</c> leaves no Grid Engine job and no process behind.
/// </summary>
public sealed class SgePersonalClusterTests(ITestOutputHelper output) : LoopbackPersonalClusterTest(output, "isthmus-sge-")
{
    private static readonly TimeSpan Long = PersonalClusterCli.Patience;
    private readonly Dictionary<string, string?> _sge = new()
    {
        ["SGE_ROOT"] = "/var/lib/gridengine",
        ["SGE_CELL"] = "isthmus-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)),
        ["SGE_QMASTER_PORT"] = "16444",
        ["SGE_EXECD_PORT"] = "16445",
    };

    private static string SiteScript => Path.Combine(AppContext.BaseDirectory, "Scripts", "sge_site.sh");

    protected override IReadOnlyDictionary<string, string?> Environment => _sge;

    protected override async Task StartSiteServicesAsync()
    {
        // Grid Engine's daemons run as sgeadmin, which must reach their spool directory below the work directory.
        File.SetUnixFileMode(Work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        _sge["SGE_WORK"] = Path.Combine(Work, "sge");
        var start = await Host.RunAsync("/bin/bash", [SiteScript, "start"], TimeSpan.FromSeconds(60), _sge);
        Output.WriteLine(start.ToString());
        Assert.True(start.ExitCode == 0, "Grid Engine did not start: " + start);
    }

    protected override async Task StopSiteServicesAsync()
    {
        if (_sge.ContainsKey("SGE_WORK"))
        {
            Output.WriteLine((await Host.RunAsync("/bin/bash", [SiteScript, "stop"], TimeSpan.FromSeconds(60), _sge)).ToString());
        }
    }

    [Fact]
    public async Task SgeSite_QsubProxy_JoinsPersonalSlurm_QdelDrains_DownLeavesNoJob()
    {
        var file = Path.Combine(Work, "sge.toml");
        await File.WriteAllTextAsync(file, """
            [cluster]
            name = "grid"
            network = "100.64.0.0/16"

            [sites.a]
            scheduler = "sge"
            queue = "all.q"
            walltime = "00:30:00"
            min = 1
            max = 2

            [sites.b]
            scheduler = "local"

            """);
        var up = await Cli.RunAsync("up", file, "--wait", "150");
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Contains("a nodes: a1 ", up.StandardOutput, StringComparison.Ordinal);

        // The proxy is a Grid Engine job: its id is what qstat lists, running, under the proxy's job name.
        var a1 = PersonalClusterCli.Proxies(await Cli.StatusAsync()).Single(p => p.Node == "a1");
        Assert.True(a1.Job.All(char.IsAsciiDigit), a1.Job);
        Assert.Contains((a1.Job, "isthmus-a1", "r"), await QstatAsync());

        var srun = await Cli.ShellAsync("srun -N2 hostname");
        Assert.True(srun.ExitCode == 0, srun.ToString());
        Assert.Equal(["a1", "b1"], PersonalClusterCli.Lines(srun.StandardOutput).Order(StringComparer.Ordinal));

        var grow = await Cli.RunAsync("grow", "a", "1", "--wait", "120");
        Assert.True(grow.ExitCode == 0, grow.ToString());
        Assert.Equal(["a1", "a2", "b1"], await Cli.SinfoAsync());
        var a2 = PersonalClusterCli.Proxies(await Cli.StatusAsync()).Single(p => p.Node == "a2");

        // The site deletes a proxy by itself: Grid Engine warns it (SIGUSR2, -notify), it drains, its job ends
        // well before the SIGKILL, and its node leaves the personal cluster. grow made two proxies at a the
        // floor, so the manager then submits a replacement, which joins under a new name (a3); whether sinfo
        // ever shows [a1, b1] in between depends on how fast Grid Engine starts a3, so that is not asserted.
        (await Host.RunAsync("/usr/bin/qdel", [a2.Job], TimeSpan.FromSeconds(30), _sge)).EnsureSuccess();
        await Poll.AssertAsync(async () => !(await Cli.SinfoAsync()).Contains("a2"), Long, "a2 leaves the personal cluster", TimeSpan.FromSeconds(1));
        await Poll.AssertAsync(async () => !(await QstatAsync()).Any(j => j.Id == a2.Job), Long, $"job {a2.Job} leaves qstat", TimeSpan.FromSeconds(1));
        await Poll.AssertAsync(async () => (await Cli.SinfoAsync()).SequenceEqual(["a1", "a3", "b1"]), Long, "a3 replaces a2 (grow's floor of 2 at a)", TimeSpan.FromSeconds(1));
        var log = await File.ReadAllTextAsync(Path.Combine(Work, "state", "sites", "a", "jobs", "a2.log"));
        Assert.Contains("node a2 leaves: asked to stop", log, StringComparison.Ordinal);

        await DownLeavesNothingAsync();
        Assert.Empty(await QstatAsync());
    }

    /// <summary>
    /// Grid Engine refuses the proxy (a queue that does not exist): up reports site a with qsub's reason and
    /// exits non-zero, site b's node comes up and runs jobs, grow at a refuses with the reason, and down
    /// leaves no job and no process behind.
    /// </summary>
    [Fact]
    public async Task RefusedSubmission_ReportedWithSiteAndReason_OtherSiteWorks_DownCleans()
    {
        var file = Path.Combine(Work, "refused.toml");
        await File.WriteAllTextAsync(file, """
            [cluster]
            name = "refused"
            network = "100.64.0.0/16"

            [sites.a]
            scheduler = "sge"
            queue = "nosuch.q"

            [sites.b]
            scheduler = "local"

            """);
        var up = await Cli.RunAsync("up", file, "--wait", "150");
        Output.WriteLine(up.ToString());
        Assert.NotEqual(0, up.ExitCode);
        var text = up.StandardOutput + up.StandardError;
        Assert.Matches(@"(?m)\ba\b.*qsub.*nosuch\.q", text);
        Assert.Contains("b nodes: b1 ", up.StandardOutput, StringComparison.Ordinal);

        var srun = await Cli.ShellAsync("srun -N1 hostname");
        Assert.True(srun.ExitCode == 0, srun.ToString());
        Assert.Equal("b1", srun.StandardOutput.Trim());
        // A site refused at up stays out until the next up (see "A site that does not come up"): grow says why.
        var grow = await Cli.RunAsync("grow", "a", "1");
        Assert.Equal(1, grow.ExitCode);
        Assert.Contains("site a did not come up", grow.StandardError, StringComparison.Ordinal);
        Assert.Contains("nosuch.q", grow.StandardError, StringComparison.Ordinal);

        await DownLeavesNothingAsync();
        Assert.Empty(await QstatAsync());
    }

    private async Task<List<(string Id, string Name, string State)>> QstatAsync()
    {
        var result = await Host.RunAsync("/usr/bin/qstat", ["-u", "*"], TimeSpan.FromSeconds(30), _sge);
        Assert.True(result.ExitCode == 0, result.ToString());
        return
        [
            .. PersonalClusterCli.Lines(result.StandardOutput).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(c => c.Length >= 5 && c[0].All(char.IsAsciiDigit)).Select(c => (c[0], c[2], c[4])),
        ];
    }
}
