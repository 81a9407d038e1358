using Isthmus.Core.Config;
using Isthmus.Core.Relay.Emulation;
using Xunit;

namespace Isthmus.Core.Tests.Config;

public class ClusterFileWanEmulationTests
{
    private static string File(string clusterLine, string siteLine) => $"""
        [cluster]
        name = "lab"
        id = "0123456789abcdef"
        network = "100.64.0.0/16"
        {clusterLine}

        [sites.west]
        subnet = "100.64.1.0/24"
        wan = "198.51.100.7:7000"
        lan = "10.0.0.1:7001"
        {siteLine}

        [sites.east]
        subnet = "100.64.2.0/24"
        wan = "198.51.100.8:7000"
        lan = "10.0.1.1:7001"
        """;

    [Fact]
    public void Reads_the_cluster_and_site_keys()
    {
        var file = ClusterFile.Parse(File("wan_emulation = \"delay=5ms,loss=1%\"", "wan_emulation = \"delay=25ms,outage=5s@3s\""));
        Assert.Equal(WanEmulationSpec.Parse("delay=5ms,loss=1%"), file.Cluster.WanEmulation);
        Assert.Equal(WanEmulationSpec.Parse("delay=25ms,outage=5s@3s"), file.FindSite("west")!.WanEmulation);
        Assert.Null(file.FindSite("east")!.WanEmulation);
    }

    [Fact]
    public void Survives_a_save_and_load()
    {
        var file = ClusterFile.Parse(File("wan_emulation = \"delay=2.5ms,jitter=0.5ms,rate=1Gbit\"", "wan_emulation = \"none\""));
        Assert.Equal(file, ClusterFile.Parse(file.ToToml()));
    }

    [Fact]
    public void Without_the_key_there_is_no_emulation()
    {
        var file = ClusterFile.Parse(File("", ""));
        Assert.Null(file.Cluster.WanEmulation);
        Assert.All(file.Sites, s => Assert.Null(s.WanEmulation));
    }

    [Theory]
    [InlineData("wan_emulation = \"delay=5\"", "", "cluster.toml:5:", "delay=5: not a duration")]
    [InlineData("", "wan_emulation = \"rate=fast\"", "cluster.toml:11:", "rate=fast: not a rate")]
    [InlineData("", "wan_emulation = 5", "cluster.toml:11:", "must be a string")]
    public void Bad_spec_names_file_line_and_part(string clusterLine, string siteLine, string where, string what)
    {
        var e = Assert.Throws<ConfigException>(() => ClusterFile.Parse(File(clusterLine, siteLine)));
        Assert.StartsWith(where, e.Message, StringComparison.Ordinal);
        Assert.Contains(what, e.Message, StringComparison.Ordinal);
    }
}
