using Isthmus.Core.Config;
using Isthmus.Personal;
using Isthmus.Personal.Spec;
using Xunit;

namespace Isthmus.Core.Tests.Personal;

public sealed class PersonalClusterFileReaderTests
{
    private const string Minimal = """
        [cluster]
        name = "demo"
        network = "100.64.0.0/16"

        [sites.a]
        """;

    [Fact]
    public void Minimal_Defaults()
    {
        var spec = PersonalClusterFileReader.Parse(Minimal, "demo.toml");
        Assert.Equal("demo", spec.Name);
        Assert.Equal(ManagerKind.Slurm, spec.Manager.Kind);
        Assert.Equal(TimeSpan.FromSeconds(600), spec.IdleTimeout);
        var a = Assert.Single(spec.Sites);
        Assert.Equal((AccessKind.Local, SchedulerKind.Local, 1, 1), (a.Access, a.Scheduler, a.MinProxies, a.MaxProxies));
        Assert.Equal(new Endpoint("127.0.0.2", null), a.Lan);
        Assert.Equal(new Endpoint("127.0.0.1", null), spec.Submit.Wan);
    }

    [Fact]
    public void SshSite_AllKeys()
    {
        var spec = PersonalClusterFileReader.Parse("""
            [cluster]
            name = "c"
            network = "100.64.0.0/16"
            idle_timeout = 30
            [submit]
            wan = "203.0.113.9:7000"
            [manager]
            kind = "none"
            cpus = 4
            [sites.x]
            access = "ssh"
            scheduler = "slurm"
            partition = "p"
            walltime = "1-02:00:00"
            submit_options = ["--account=a"]
            min = 2
            max = 5
            wan = "203.0.113.1:7400"
            lan = "10.0.0.1:7401"
            work_dir = "/scratch/me/isthmus"
            [sites.x.ssh]
            host = "login.x"
            user = "me"
            port = 2222
            identity = "~/.ssh/id"
            options = ["StrictHostKeyChecking=accept-new"]
            """, "c.toml");
        var x = Assert.Single(spec.Sites);
        Assert.Equal(new SshSpec("login.x", "me", 2222, "~/.ssh/id", ["StrictHostKeyChecking=accept-new"]).Destination, x.Ssh!.Destination);
        Assert.Equal(("p", "1-02:00:00", 2, 5, "/scratch/me/isthmus"), (x.Partition, x.Walltime, x.MinProxies, x.MaxProxies, x.WorkDir));
        Assert.Equal(["--account=a"], x.SubmitOptions);
        Assert.Equal(new Endpoint("10.0.0.1", 7401), x.Lan);
        Assert.Equal((ManagerKind.None, 4), (spec.Manager.Kind, spec.Manager.Cpus));
        Assert.Equal(new Endpoint("203.0.113.9", 7000), spec.Submit.Wan);
    }

    [Theory]
    [InlineData("\n[sites.a]\nschedulr = \"local\"\n", 6, "unknown key 'schedulr' in [sites.a]")]
    [InlineData("\n[sites.a]\nmin = 3\nmax = 2\n", 7, "max (2) is below min (3)")]
    [InlineData("\n[sites.a]\naccess = \"ssh\"\n[sites.a.ssh]\nhost = \"h\"\n", 5, "'wan' must be HOST:PORT")]
    [InlineData("\n[sites.a]\naccess = \"ssh\"\n", 5, "no [sites.a.ssh] table")]
    [InlineData("\n[sites.a]\nwalltime = \"soon\"\n", 6, "walltime 'soon' is not")]
    [InlineData("\n[sites.home]\n", 5, "taken by the submission host")]
    [InlineData("\n[manager]\nkind = \"pbs\"\n[sites.a]\n", 6, "kind 'pbs' is not a job manager")]
    [InlineData("\n[sites.a]\nscheduler = \"pbs\"\n", 6, "scheduler 'pbs' is not known: use \"slurm\", \"sge\" or \"local\"")]
    [InlineData("\n[sites.a]\npartition = \"p\"\nqueue = \"q\"\n", 7, "both 'partition' and 'queue'")]
    [InlineData("\n[sites.a.foo]\nx = 1\n", 5, "unknown table [sites.a.foo]")]
    public void BadFiles_FileLineReason(string tail, int line, string reason)
    {
        var text = "[cluster]\nname = \"demo\"\nnetwork = \"100.64.0.0/16\"\n" + tail;
        var e = Assert.Throws<ConfigException>(() => PersonalClusterFileReader.Parse(text, "bad.toml"));
        Assert.Equal(line, e.Line);
        Assert.Contains(reason, e.Reason, StringComparison.Ordinal);
        Assert.StartsWith($"bad.toml:{line}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SgeSite_QueueIsThePartition()
    {
        var spec = PersonalClusterFileReader.Parse(Minimal + "\nscheduler = \"sge\"\nqueue = \"all.q\"\nwalltime = \"02:00:00\"\n", "sge.toml");
        var a = Assert.Single(spec.Sites);
        Assert.Equal((SchedulerKind.Sge, "all.q", "02:00:00"), (a.Scheduler, a.Partition, a.Walltime));
    }

    [Fact]
    public void NoSites_Error() =>
        Assert.Contains("no sites", Assert.Throws<ConfigException>(() => PersonalClusterFileReader.Parse("[cluster]\nname = \"d\"\nnetwork = \"100.64.0.0/16\"\n")).Message, StringComparison.Ordinal);

    [Theory]
    [InlineData("a1,b1", new[] { "a1", "b1" })]
    [InlineData("a[1-3],b2", new[] { "a1", "a2", "a3", "b2" })]
    [InlineData("a[1,3-4]", new[] { "a1", "a3", "a4" })]
    [InlineData("", new string[0])]
    public void SlurmNodeLists_Expand(string list, string[] names) =>
        Assert.Equal(names.Order(StringComparer.Ordinal), PersonalCluster.NodeList(list).Order(StringComparer.Ordinal));
}
