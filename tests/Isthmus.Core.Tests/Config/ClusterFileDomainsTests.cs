using Isthmus.Core.Addressing;
using Isthmus.Core.Config;
using Xunit;

namespace Isthmus.Core.Tests.Config;

public class ClusterFileDomainsTests
{
    private const string Head = """
        [cluster]
        name = "lab"
        id = "0123456789abcdef"
        network = "100.64.0.0/16"

        [sites.a]
        subnet = "100.64.1.0/24"
        wan = "198.51.100.7:7000"
        lan = "10.0.0.1:7001"

        [sites.b]
        subnet = "100.64.2.0/24"
        wan = "198.51.100.8:7000"
        lan = "10.0.1.1:7001"

        """;

    [Fact]
    public void No_domains_table_means_null_domains()
    {
        Assert.Null(ClusterFile.Parse(Head).Domains);
    }

    [Fact]
    public void Domains_are_read_in_both_forms_in_file_order_and_written_back()
    {
        var file = ClusterFile.Parse(Head + """
            [domains]
            x = ["a1", "b1.b"]
            all = ["*"]

            [domains.y]
            nodes = ["a2", "b1"]
            """);
        Assert.NotNull(file.Domains);
        Assert.Equal(["x", "all", "y"], file.Domains.Select(d => d.Name));
        Assert.Equal(["a1", "b1.b"], file.Domains[0].Members);
        Assert.Equal(["a2", "b1"], file.Domains[2].Members);

        var again = ClusterFile.Parse(file.ToToml());
        Assert.Equal(file, again);
        Assert.NotEqual(file, ClusterFile.Parse(Head));

        // add-site keeps the domains.
        Assert.Equal(file.Domains, file.WithSite(new SiteSettings("c", IPv4Cidr.Parse("100.64.3.0/24"), new HostPort("h", 1), new HostPort("h", 2))).Domains);
    }

    [Fact]
    public void An_empty_domain_is_allowed_and_filled_at_run_time()
    {
        var file = ClusterFile.Parse(Head + "[domains]\nlater = []\n");
        Assert.Empty(file.Domains![0].Members);
    }

    [Theory]
    [InlineData("[domains]\nx = [\"A1\"]\n", 16, "'A1' is not a node")]
    [InlineData("[domains]\nx = [\"a1.c\"]\n", 16, "names site 'c', which is not in this file")]
    [InlineData("[domains]\nx = \"a1\"\n", 16, "'x' must be an array")]
    [InlineData("[domains]\nx = [1]\n", 16, "must be an array of strings")]
    [InlineData("[domains]\nBad = [\"a1\"]\n", 16, "domain name 'Bad' is not allowed")]
    [InlineData("[domains]\n", 15, "[domains] names no domain")]
    [InlineData("[domains.y]\nmembers = [\"a1\"]\n", 16, "unknown key 'members' in [domains.y]")]
    [InlineData("[domains.y]\n", 15, "[domains.y] has no 'nodes'")]
    public void Bad_domains_are_reported_with_the_line(string tail, int line, string message)
    {
        var e = Assert.Throws<ConfigException>(() => ClusterFile.Parse(Head + tail, "c.toml"));
        Assert.Equal(line, e.Line);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.StartsWith($"c.toml:{line}: ", e.Message, StringComparison.Ordinal);
    }
}
