using Isthmus.Cluster;
using Isthmus.Core.Addressing;
using Isthmus.Core.Security;
using Xunit;

namespace Isthmus.Core.Tests.Clusters;

public class ClusterCreatorTests
{
    private static readonly HostPort Wan = HostPort.Parse("198.51.100.7:7000");
    private static readonly HostPort Lan = HostPort.Parse("10.0.0.1:7001");

    [Fact]
    public void New_makes_every_file_with_private_modes()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.Combine("c");
        var dir = ClusterCreator.New(path, IPv4Cidr.Parse("100.64.0.0/16"), "lab");

        Assert.True(dir.Exists);
        var file = dir.LoadClusterFile();
        Assert.Equal("lab", file.Cluster.Name);
        Assert.Matches("^[0-9a-f]{16}$", file.Cluster.Id);
        Assert.Equal(IPv4Cidr.Parse("100.64.0.0/16"), file.Cluster.Network);
        Assert.Equal(VirtualNetwork.DefaultImageBase, file.Cluster.ImageBase);
        Assert.True(file.Cluster.WanEncryption);
        Assert.Empty(file.Sites);
        Assert.Equal(32, dir.LoadEnrolSecret().Length);
        Assert.Equal(32, dir.LoadRouterSecret().Length);
        Assert.NotEqual(dir.LoadEnrolSecret(), dir.LoadRouterSecret());
        using (var ca = dir.LoadCaWithKey())
        {
            Assert.True(ca.HasPrivateKey);
        }

        using (var ca = dir.LoadCaCertificate())
        {
            Assert.False(ca.HasPrivateKey);
        }

        Assert.Equal(SecureFile.DirectoryMode, File.GetUnixFileMode(path));
        Assert.Equal(SecureFile.SecretMode, File.GetUnixFileMode(dir.CaKeyPath));
        Assert.Equal(SecureFile.SecretMode, File.GetUnixFileMode(dir.EnrolSecretPath));
        Assert.Equal(SecureFile.SecretMode, File.GetUnixFileMode(dir.RouterSecretPath));
        Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(dir.CaCertificatePath) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite));
    }

    [Fact]
    public void New_keeps_options()
    {
        using var scratch = new ScratchDirectory();
        var dir = ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("10.20.0.0/20"), "x", IPv4.Parse("127.5.16.0"), wanEncryption: false);
        var file = dir.LoadClusterFile();
        Assert.Equal(IPv4.Parse("127.5.16.0"), file.Cluster.ImageBase);
        Assert.False(file.Cluster.WanEncryption);
    }

    [Fact]
    public void New_refuses_to_overwrite()
    {
        using var scratch = new ScratchDirectory();
        var dir = ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16"));
        var before = File.ReadAllText(dir.ClusterFilePath);
        var key = File.ReadAllText(dir.CaKeyPath);
        var e = Assert.Throws<UserException>(() => ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16")));
        Assert.Contains("already holds a cluster", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllText(dir.ClusterFilePath));
        Assert.Equal(key, File.ReadAllText(dir.CaKeyPath));
    }

    [Fact]
    public void New_refuses_leftovers_of_an_interrupted_run()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllText(scratch.Combine("ca.key"), "old");
        var e = Assert.Throws<UserException>(() => ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16")));
        Assert.Contains("ca.key but no cluster.toml", e.Message, StringComparison.Ordinal);
        Assert.Equal("old", File.ReadAllText(scratch.Combine("ca.key")));
    }

    [Theory]
    [InlineData("100.0.0.0/8", "isthmus", null, "prefix length must be 16..28")]
    [InlineData("100.64.0.0/16", "Bad_Name", null, "cluster name 'Bad_Name' is not allowed")]
    [InlineData("100.64.0.0/16", "isthmus", "127.0.0.0", "contains 127.0.0.1")]
    [InlineData("100.64.0.0/16", "isthmus", "127.100.0.1", "has bits set in the host part")]
    public void New_refuses_bad_input_and_writes_nothing(string network, string name, string? image, string reason)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.Combine("c");
        var e = Assert.Throws<UserException>(() =>
            ClusterCreator.New(path, IPv4Cidr.Parse(network), name, image is null ? null : IPv4.Parse(image)));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(path));
    }

    [Fact]
    public void AddSite_allocates_in_order_and_fills_gaps()
    {
        using var scratch = new ScratchDirectory();
        ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16"));
        Assert.Equal("100.64.1.0/24", ClusterCreator.AddSite(scratch.Path, "a", Wan, Lan).Subnet.ToString());
        Assert.Equal("100.64.3.0/24", ClusterCreator.AddSite(scratch.Path, "x", Wan, Lan, IPv4Cidr.Parse("100.64.3.0/24")).Subnet.ToString());
        Assert.Equal("100.64.2.0/24", ClusterCreator.AddSite(scratch.Path, "b", Wan, Lan).Subnet.ToString());
        Assert.Equal("100.64.4.0/24", ClusterCreator.AddSite(scratch.Path, "c", Wan, Lan).Subnet.ToString());
        // A small explicit subnet blocks the whole /24 it lies in.
        Assert.Equal("100.64.5.64/26", ClusterCreator.AddSite(scratch.Path, "y", Wan, Lan, IPv4Cidr.Parse("100.64.5.64/26")).Subnet.ToString());
        Assert.Equal("100.64.6.0/24", ClusterCreator.AddSite(scratch.Path, "d", Wan, Lan).Subnet.ToString());

        var file = new ClusterDirectory(scratch.Path).LoadClusterFile();
        Assert.Equal(["a", "x", "b", "c", "y", "d"], file.Sites.Select(s => s.Name));
        Assert.Equal(Wan, file.FindSite("d")!.Wan);
        Assert.Equal(Lan, file.FindSite("d")!.Lan);
    }

    [Theory]
    [InlineData("10.0.0.0/23", new[] { "10.0.1.0/24" })]
    [InlineData("10.0.0.0/24", new[] { "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/26" })]
    [InlineData("10.0.0.0/28", new[] { "10.0.0.4/30", "10.0.0.8/30", "10.0.0.12/30" })]
    public void Small_networks_get_smaller_blocks_until_full(string network, string[] expected)
    {
        using var scratch = new ScratchDirectory();
        ClusterCreator.New(scratch.Path, IPv4Cidr.Parse(network));
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], ClusterCreator.AddSite(scratch.Path, $"s{i}", Wan, Lan).Subnet.ToString());
        }

        var e = Assert.Throws<UserException>(() => ClusterCreator.AddSite(scratch.Path, "full", Wan, Lan));
        Assert.Contains($"no free /{ClusterCreator.SiteBlockPrefix(IPv4Cidr.Parse(network))} left", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddSite_refuses_duplicates_overlaps_and_outside_subnets()
    {
        using var scratch = new ScratchDirectory();
        var dir = ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16"));
        ClusterCreator.AddSite(scratch.Path, "a", Wan, Lan);
        var before = File.ReadAllText(dir.ClusterFilePath);

        Assert.Contains("site 'a' already exists", Assert.Throws<UserException>(() => ClusterCreator.AddSite(scratch.Path, "a", Wan, Lan)).Message, StringComparison.Ordinal);
        Assert.Contains("overlaps site 'a' (100.64.1.0/24)", Assert.Throws<UserException>(() =>
            ClusterCreator.AddSite(scratch.Path, "b", Wan, Lan, IPv4Cidr.Parse("100.64.1.128/25"))).Message, StringComparison.Ordinal);
        Assert.Contains("overlaps site 'a'", Assert.Throws<UserException>(() =>
            ClusterCreator.AddSite(scratch.Path, "b", Wan, Lan, IPv4Cidr.Parse("100.64.0.0/23"))).Message, StringComparison.Ordinal);
        Assert.Contains("not inside the cluster network", Assert.Throws<UserException>(() =>
            ClusterCreator.AddSite(scratch.Path, "b", Wan, Lan, IPv4Cidr.Parse("100.65.1.0/24"))).Message, StringComparison.Ordinal);
        Assert.Contains("site name 'B' is not allowed", Assert.Throws<UserException>(() =>
            ClusterCreator.AddSite(scratch.Path, "B", Wan, Lan)).Message, StringComparison.Ordinal);
        Assert.Contains("site name '../b' is not allowed", Assert.Throws<UserException>(() =>
            ClusterCreator.AddSite(scratch.Path, "../b", Wan, Lan)).Message, StringComparison.Ordinal);

        Assert.Equal(before, File.ReadAllText(dir.ClusterFilePath));
        Assert.False(Directory.Exists(dir.SiteDirectory("b")));
    }

    [Fact]
    public void AddSite_refuses_a_directory_without_cluster()
    {
        using var scratch = new ScratchDirectory();
        var e = Assert.Throws<UserException>(() => ClusterCreator.AddSite(scratch.Path, "a", Wan, Lan));
        Assert.Equal($"{scratch.Path}/cluster.toml not found: is {scratch.Path} a cluster directory made by 'isthmus cluster new'?", e.Message);
    }

    [Fact]
    public void AddSite_issues_a_router_identity()
    {
        using var scratch = new ScratchDirectory();
        var dir = ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16"), "lab");
        ClusterCreator.AddSite(scratch.Path, "west", Wan, Lan);

        Assert.True(File.Exists(dir.RouterCertificatePath("west")));
        Assert.Equal(SecureFile.SecretMode, File.GetUnixFileMode(dir.RouterKeyPath("west")));
        Assert.Equal(SecureFile.DirectoryMode, File.GetUnixFileMode(dir.SiteDirectory("west")));
        Assert.Equal(SecureFile.DirectoryMode, File.GetUnixFileMode(dir.SitesDirectory));

        using var ca = dir.LoadCaCertificate();
        using var identity = dir.LoadRouterIdentity("west");
        Assert.True(identity.HasPrivateKey);
        Assert.Equal("CN=router.west.lab", identity.Subject);
        Assert.True(PeerCertificateValidator.Validate(identity, ca, "router.west.lab", out var reason), reason);
    }

    [Fact]
    public void Missing_site_identity_says_how_to_add_it()
    {
        using var scratch = new ScratchDirectory();
        var dir = ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16"));
        var e = Assert.Throws<UserException>(() => dir.LoadRouterIdentity("east"));
        Assert.Contains("sites/east/router.crt not found", e.Message, StringComparison.Ordinal);
        Assert.Contains("isthmus cluster add-site", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Layout_paths()
    {
        var dir = new ClusterDirectory("/srv/c");
        Assert.Equal("/srv/c/cluster.toml", dir.ClusterFilePath);
        Assert.Equal("/srv/c/ca.crt", dir.CaCertificatePath);
        Assert.Equal("/srv/c/ca.key", dir.CaKeyPath);
        Assert.Equal("/srv/c/enrol.secret", dir.EnrolSecretPath);
        Assert.Equal("/srv/c/router.secret", dir.RouterSecretPath);
        Assert.Equal("/srv/c/sites/a/router.crt", dir.RouterCertificatePath("a"));
        Assert.Equal("/srv/c/sites/a/router.key", dir.RouterKeyPath("a"));
        Assert.Equal("/srv/c/state/a", dir.StateDirectory("a"));
        Assert.Equal("/srv/c/state/a/nodes.json", dir.NodeBindingsPath("a"));
        Assert.Equal("/srv/c/nodes/n1.key", dir.NodeKeyPath("n1"));
        Assert.Throws<UserException>(() => dir.NodeKeyPath("../../etc/passwd"));
        Assert.False(dir.Exists);
    }

    [Fact]
    public void Secrets_are_checked()
    {
        using var scratch = new ScratchDirectory();
        var dir = ClusterCreator.New(scratch.Path, IPv4Cidr.Parse("100.64.0.0/16"));
        File.WriteAllText(dir.EnrolSecretPath, "zz");
        Assert.Contains("is not a hex secret", Assert.Throws<UserException>(dir.LoadEnrolSecret).Message, StringComparison.Ordinal);
        File.WriteAllText(dir.EnrolSecretPath, "abcd\n");
        Assert.Contains("holds 2 bytes", Assert.Throws<UserException>(dir.LoadEnrolSecret).Message, StringComparison.Ordinal);
        File.Delete(dir.RouterSecretPath);
        Assert.Contains("router.secret not found", Assert.Throws<UserException>(dir.LoadRouterSecret).Message, StringComparison.Ordinal);
    }
}
