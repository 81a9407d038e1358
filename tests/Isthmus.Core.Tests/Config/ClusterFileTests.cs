using Isthmus.Core.Addressing;
using Isthmus.Core.Config;
using Isthmus.Core.Tests.Clusters;
using Xunit;

namespace Isthmus.Core.Tests.Config;

public class ClusterFileTests
{
    private const string Good = """
        [cluster]
        name = "lab"
        id = "0123456789abcdef"
        network = "100.64.0.0/16"
        image = "127.100.0.0"
        wan_encryption = false

        [sites.west]
        subnet = "100.64.1.0/24"
        wan = "198.51.100.7:7000"
        lan = "10.0.0.1:7001"

        [sites.east]
        subnet = "100.64.2.0/25"
        wan = "[2001:db8::7]:7000"
        lan = "head.east:7001"
        """;

    [Fact]
    public void Loads_a_valid_file()
    {
        var file = ClusterFile.Parse(Good);
        Assert.Equal(new ClusterSettings("lab", "0123456789abcdef", IPv4Cidr.Parse("100.64.0.0/16"), 0x7F640000, false), file.Cluster);
        Assert.Equal(["west", "east"], file.Sites.Select(s => s.Name));
        var east = file.FindSite("east")!;
        Assert.Equal(IPv4Cidr.Parse("100.64.2.0/25"), east.Subnet);
        Assert.Equal(new HostPort("2001:db8::7", 7000), east.Wan);
        Assert.Equal(new HostPort("head.east", 7001), east.Lan);
        Assert.Equal("100.64.2.1", IPv4.Format(east.RouterAddress));
        Assert.Equal("100.64.2.2", IPv4.Format(east.FirstNodeAddress));
        Assert.Equal("100.64.2.126", IPv4.Format(east.LastNodeAddress));
        Assert.Null(file.FindSite("north"));
        Assert.Equal("west", file.SiteForAddress(IPv4.Parse("100.64.1.77"))!.Name);
        Assert.Equal("east", file.SiteForAddress(IPv4.Parse("100.64.2.77"))!.Name);
        Assert.Null(file.SiteForAddress(IPv4.Parse("100.64.2.200")));
        Assert.Null(file.SiteForAddress(IPv4.Parse("10.0.0.1")));
        Assert.Equal("127.100.1.5", IPv4.Format(file.VirtualNetwork.ToImage(IPv4.Parse("100.64.1.5"))));
    }

    [Fact]
    public void Image_and_wan_encryption_have_defaults()
    {
        var file = ClusterFile.Parse("[cluster]\nname = \"x\"\nid = \"0123456789abcdef\"\nnetwork = \"10.9.0.0/16\"\n");
        Assert.Equal(VirtualNetwork.DefaultImageBase, file.Cluster.ImageBase);
        Assert.True(file.Cluster.WanEncryption);
        Assert.False(file.Cluster.NodeHostname);
        Assert.Empty(file.Sites);
    }

    [Fact]
    public void Node_hostname_is_read_and_written()
    {
        var file = ClusterFile.Parse("[cluster]\nname = \"x\"\nid = \"0123456789abcdef\"\nnetwork = \"10.9.0.0/16\"\nnode_hostname = true\n");
        Assert.True(file.Cluster.NodeHostname);
        Assert.True(ClusterFile.Parse(file.ToToml()).Cluster.NodeHostname);
    }

    [Fact]
    public void Save_and_load_round_trip()
    {
        using var dir = new ScratchDirectory();
        var path = dir.Combine("cluster.toml");
        var file = ClusterFile.Parse(Good);
        file.Save(path);
        var text = File.ReadAllText(path);
        Assert.StartsWith("# Isthmus cluster file", text, StringComparison.Ordinal);
        var loaded = ClusterFile.Load(path);
        Assert.Equal(file, loaded);
        Assert.Equal(file.GetHashCode(), loaded.GetHashCode());
        Assert.Equal(file.Sites, loaded.Sites);
        // Saving over an existing file replaces it and leaves no temporary file behind.
        loaded.WithSite(new SiteSettings("north", IPv4Cidr.Parse("100.64.3.0/24"), HostPort.Parse("h:1"), HostPort.Parse("h:2"))).Save(path);
        Assert.Equal(3, ClusterFile.Load(path).Sites.Count);
        Assert.Equal(["cluster.toml"], Directory.GetFiles(dir.Path).Select(f => Path.GetFileName(f)));
    }

    [Fact]
    public void Equality_compares_sites_in_order()
    {
        var file = ClusterFile.Parse(Good);
        Assert.NotEqual(file, file with { Sites = [.. file.Sites.Reverse()] });
        Assert.NotEqual(file, file with { Sites = [file.Sites[0]] });
        Assert.Equal(file, file with { Sites = [.. file.Sites] });
    }

    [Theory]
    [InlineData("subnet = \"100.64.1.0/24\"", "subnet = \"100.65.1.0/24\"", 9, "[sites.west]: subnet 100.65.1.0/24 is not inside the cluster network 100.64.0.0/16")]
    [InlineData("subnet = \"100.64.2.0/25\"", "subnet = \"100.64.1.128/25\"", 14, "[sites.east]: subnet 100.64.1.128/25 overlaps site 'west' (100.64.1.0/24)")]
    [InlineData("subnet = \"100.64.2.0/25\"", "subnet = \"100.64.0.0/16\"", 14, "[sites.east]: subnet 100.64.0.0/16 overlaps site 'west'")]
    [InlineData("subnet = \"100.64.2.0/25\"", "subnet = \"100.64.2.0/31\"", 14, "is too small")]
    [InlineData("subnet = \"100.64.2.0/25\"", "subnet = \"100.64.2.1/25\"", 14, "host bits are set")]
    [InlineData("subnet = \"100.64.2.0/25\"", "subnet = 5", 14, "'subnet' must be a string, in quotes, not an integer")]
    [InlineData("lan = \"10.0.0.1:7001\"", "lan = \"10.0.0.1:70001\"", 11, "lan: '10.0.0.1:70001': the port must be a number 1..65535")]
    [InlineData("wan = \"198.51.100.7:7000\"", "wan = \"198.51.100.7\"", 10, "wan: '198.51.100.7' has no port")]
    [InlineData("wan = \"198.51.100.7:7000\"", "wan = \"198.51.100.7:0\"", 10, "the port must be a number 1..65535")]
    [InlineData("[sites.east]", "[sites.East]", 13, "site name 'East' is not allowed")]
    [InlineData("[sites.east]", "[sites.\"e st\"]", 13, "site name 'e st' is not allowed")]
    [InlineData("[sites.east]", "[sites.-east]", 13, "site name '-east' is not allowed")]
    [InlineData("[sites.east]", "[sites.west]", 13, "duplicate table [sites.west] (first on line 8)")]
    [InlineData("lan = \"head.east:7001\"", "lan = \"head.east:7001\"\nport = 7", 17, "unknown key 'port' in [sites.east] (the keys are subnet, wan, lan, wan_emulation)")]
    [InlineData("lan = \"head.east:7001\"", "", 13, "[sites.east] has no 'lan'")]
    [InlineData("subnet = \"100.64.1.0/24\"", "", 8, "[sites.west] has no 'subnet'")]
    [InlineData("wan_encryption = false", "wan_encryption = \"no\"", 6, "'wan_encryption' must be true or false, not a string")]
    [InlineData("wan_encryption = false", "wan_encrypt = false", 6, "unknown key 'wan_encrypt' in [cluster] (the keys are name, id, network, image, wan_encryption, node_hostname, wan_emulation, direct_lan)")]
    [InlineData("name = \"lab\"", "name = \"Lab\"", 2, "cluster name 'Lab' is not allowed")]
    [InlineData("name = \"lab\"", "", 1, "[cluster] has no 'name'")]
    [InlineData("id = \"0123456789abcdef\"", "id = \"0123\"", 3, "id '0123' is not 16 lower-case hex digits")]
    [InlineData("network = \"100.64.0.0/16\"", "network = \"100.64.0.0/12\"", 4, "prefix length must be 16..28")]
    [InlineData("network = \"100.64.0.0/16\"", "network = \"100.64.0.0\"", 4, "the prefix length is missing")]
    [InlineData("image = \"127.100.0.0\"", "image = \"127.100.1.0\"", 5, "has bits set in the host part")]
    [InlineData("image = \"127.100.0.0\"", "image = \"127.100.0\"", 5, "image '127.100.0' is not an IPv4 address")]
    [InlineData("[cluster]", "top = 1\n[cluster]", 1, "unknown key 'top': keys belong under [cluster] or [sites.NAME]")]
    [InlineData("[sites.west]", "[other]\n[sites.west]", 8, "unknown table [other]")]
    [InlineData("[sites.west]", "[sites]\nwest = 1\n[sites.x]", 9, "unknown key 'west' in [sites]")]
    [InlineData("[sites.west]", "[cluster.extra]\n[sites.west]", 8, "unknown key 'extra' in [cluster]")]
    [InlineData("[sites.west]", "[sites.east.deeper]\nx = 1\n[sites.west]", 8, "unknown key 'deeper' in [sites.east]")]
    public void Errors_name_the_line_and_key(string find, string replace, int line, string reason)
    {
        Assert.Contains(find, Good, StringComparison.Ordinal);
        var text = Good.Replace(find, replace, StringComparison.Ordinal);
        var e = Assert.Throws<ConfigException>(() => ClusterFile.Parse(text, "c.toml"));
        Assert.Contains(reason, e.Reason, StringComparison.Ordinal);
        Assert.Equal(line, e.Line);
        Assert.StartsWith($"c.toml:{line}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_without_cluster_table_is_refused()
    {
        var e = Assert.Throws<ConfigException>(() => ClusterFile.Parse("# nothing\n", "c.toml"));
        Assert.Equal("c.toml: no [cluster] table: is this a cluster file made by 'isthmus cluster new'?", e.Message);
    }

    [Fact]
    public void In_memory_validation_matches_load()
    {
        var file = ClusterFile.Parse(Good);
        var overlapping = new SiteSettings("north", IPv4Cidr.Parse("100.64.1.0/26"), HostPort.Parse("h:1"), HostPort.Parse("h:2"));
        Assert.Equal("site 'north': subnet 100.64.1.0/26 overlaps site 'west' (100.64.1.0/24)",
            Assert.Throws<UserException>(() => file.WithSite(overlapping)).Message);
        var duplicate = new SiteSettings("west", IPv4Cidr.Parse("100.64.9.0/24"), HostPort.Parse("h:1"), HostPort.Parse("h:2"));
        Assert.Contains("defined twice", Assert.Throws<UserException>(() => file.WithSite(duplicate)).Message, StringComparison.Ordinal);
        var badName = file with { Cluster = file.Cluster with { Name = "no_underscores" } };
        Assert.Throws<UserException>(badName.Validate);
        using var dir = new ScratchDirectory();
        Assert.Throws<UserException>(() => badName.Save(dir.Combine("cluster.toml")));
        Assert.False(File.Exists(dir.Combine("cluster.toml")));
    }
}
