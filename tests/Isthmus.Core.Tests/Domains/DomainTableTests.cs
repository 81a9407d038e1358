using Isthmus.Core.Config;
using Isthmus.Core.Domains;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Domains;

public class DomainTableTests
{
    private static readonly NodeRef A1 = new("a1", "a");
    private static readonly NodeRef A2 = new("a2", "a");
    private static readonly NodeRef B1 = new("b1", "b");
    private static readonly NodeRef B2 = new("b2", "b");

    /// <summary>The acceptance topology: x = {a1, b1}, y = {a2, b1}.</summary>
    private static DomainTable TwoDomains() => DomainTable.Default
        .Delete(DomainTable.DefaultDomain, drain: false)
        .Create("x").Add("x", ["a1", "b1"])
        .Create("y").Add("y", ["a2", "b1"]);

    [Fact]
    public void Default_puts_every_node_in_one_domain_including_unknown_ones()
    {
        var table = DomainTable.Default;
        Assert.True(table.IsDefault);
        Assert.Equal(0, table.Version);
        Assert.Equal(["default"], table.Names);
        Assert.Equal(["*"], table.MembersOf("default"));
        Assert.True(table.Shares(A1, B2));
        Assert.True(table.Shares(A1, NodeRef.Unknown));
        Assert.True(table.Shares(NodeRef.Unknown, NodeRef.Unknown));
    }

    [Fact]
    public void Nodes_share_a_domain_only_when_one_holds_both()
    {
        var table = TwoDomains();
        Assert.True(table.Shares(A1, B1));
        Assert.True(table.Shares(B1, A1));
        Assert.True(table.Shares(A2, B1));
        Assert.False(table.Shares(A1, A2));
        Assert.False(table.Shares(A2, A1));
        Assert.False(table.Shares(A1, B2));
        Assert.False(table.Shares(A1, NodeRef.Unknown));
        Assert.Equal(["x", "y"], table.DomainsOf(B1));
        Assert.Equal(["x"], table.DomainsOf(A1));
        Assert.Empty(table.DomainsOf(B2));
    }

    [Fact]
    public void A_member_with_a_site_matches_only_that_site_and_a_bare_name_every_site()
    {
        var table = DomainTable.Default.Delete("default", false).Create("x").Add("x", ["n1.a", "n2"]);
        Assert.True(table.Shares(new NodeRef("n1", "a"), new NodeRef("n2", "a")));
        Assert.True(table.Shares(new NodeRef("n1", "a"), new NodeRef("n2", "b")));
        Assert.False(table.Shares(new NodeRef("n1", "b"), new NodeRef("n2", "a")));
    }

    [Fact]
    public void Every_change_is_the_next_version_and_remove_and_delete_carry_the_drain_choice()
    {
        var table = TwoDomains();
        Assert.Equal(5, table.Version);
        var added = table.Add("x", ["a2"]);
        Assert.Equal(6, added.Version);
        Assert.Equal(["a1", "a2", "b1"], added.MembersOf("x"));
        Assert.True(added.Shares(A1, A2));
        Assert.False(added.Drain);

        var removed = added.Remove("x", ["a1"], drain: true);
        Assert.Equal(7, removed.Version);
        Assert.True(removed.Drain);
        Assert.False(removed.Shares(A1, B1));
        Assert.False(removed.Remove("x", ["a2"], drain: false).Drain);

        var deleted = removed.Delete("y", drain: false);
        Assert.False(deleted.Contains("y"));
        Assert.Equal(["x"], deleted.Names);

        // The tables themselves do not change.
        Assert.Equal(["a1", "b1"], table.MembersOf("x"));
    }

    [Theory]
    [InlineData("create", "x", "already exists")]
    [InlineData("create", "Bad_Name", "not a valid domain name")]
    [InlineData("add", "z", "no domain 'z'")]
    [InlineData("remove", "x", "has no member 'b2'")]
    [InlineData("delete", "z", "no domain 'z'")]
    public void Impossible_changes_say_why(string op, string domain, string message)
    {
        var table = TwoDomains();
        var e = Assert.Throws<DomainChangeException>(() => op switch
        {
            "create" => table.Create(domain),
            "add" => table.Add(domain, ["a1"]),
            "remove" => table.Remove(domain, ["b2"], false),
            _ => table.Delete(domain, false),
        });
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public void Bad_members_are_refused_and_removing_a_node_from_a_wildcard_domain_explains_itself()
    {
        Assert.Contains("is not a node", Assert.Throws<DomainChangeException>(() => TwoDomains().Add("x", ["A1"])).Message, StringComparison.Ordinal);
        Assert.Contains("is not a node", Assert.Throws<DomainChangeException>(() => TwoDomains().Add("x", ["a.b.c"])).Message, StringComparison.Ordinal);
        Assert.Contains("at least one", Assert.Throws<DomainChangeException>(() => TwoDomains().Add("x", [])).Message, StringComparison.Ordinal);
        var wildcard = Assert.Throws<DomainChangeException>(() => DomainTable.Default.Remove("default", ["a1"], false));
        Assert.Contains("holds every node as '*'", wildcard.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_revoked_node_shares_nothing_even_in_a_wildcard_domain()
    {
        var table = DomainTable.Default.Revoke("b1");
        Assert.Equal(1, table.Version);
        Assert.True(table.IsRevoked(B1));
        Assert.True(table.IsRevoked(new NodeRef("b1", "a")));
        Assert.False(table.IsRevoked(NodeRef.Unknown));
        Assert.False(table.Shares(A1, B1));
        Assert.False(table.Shares(B1, A1));
        Assert.True(table.Shares(A1, B2));
        Assert.Contains("already revoked", Assert.Throws<DomainChangeException>(() => table.Revoke("b1")).Message, StringComparison.Ordinal);
        Assert.Throws<DomainChangeException>(() => table.Revoke("*"));

        var site = DomainTable.Default.Revoke("b1.b");
        Assert.True(site.IsRevoked(B1));
        Assert.False(site.IsRevoked(new NodeRef("b1", "a")));

        var keyed = table.WithRevokedKeys(["AAAA"]);
        Assert.Equal(2, keyed.Version);
        Assert.True(keyed.IsKeyRevoked("AAAA"));
        Assert.False(table.IsKeyRevoked("AAAA"));
    }

    [Fact]
    public void The_newer_version_supersedes_and_equal_versions_are_ordered_by_digest()
    {
        var v5 = TwoDomains();
        var v6a = v5.Add("x", ["a2"]);
        var v6b = v5.Add("y", ["a1"]);
        Assert.True(v6a.Supersedes(v5));
        Assert.False(v5.Supersedes(v6a));
        Assert.NotEqual(v6a.Digest, v6b.Digest);
        Assert.True(v6a.Supersedes(v6b) ^ v6b.Supersedes(v6a));
        Assert.False(v6a.Supersedes(DomainTableCodec.Decode(DomainTableCodec.Encode(v6a))));
    }

    [Fact]
    public void The_encoding_is_canonical_and_round_trips()
    {
        var table = TwoDomains().Revoke("b2").WithRevokedKeys(["MFkwEw=="]);
        var decoded = DomainTableCodec.Decode(DomainTableCodec.Encode(table));
        Assert.Equal(table.Digest, decoded.Digest);
        Assert.Equal(table.Version, decoded.Version);
        Assert.Equal(table.Names, decoded.Names);
        Assert.Equal(["b2"], decoded.Revoked);
        Assert.Equal(["MFkwEw=="], decoded.RevokedKeys);

        // Order and duplicates do not matter: equal tables encode to equal bytes.
        var shuffled = new DomainTable(5, [KeyValuePair.Create<string, IEnumerable<string>>("y", ["b1", "a2", "b1"]), KeyValuePair.Create<string, IEnumerable<string>>("x", ["b1", "a1"])]);
        Assert.Equal(TwoDomains().Digest, shuffled.Digest);
        Assert.Equal("""{"version":5,"domains":{"x":["a1","b1"],"y":["a2","b1"]},"revoked":[],"revoked_keys":[],"drain":false}""", DomainTableCodec.EncodeText(shuffled));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("null")]
    [InlineData("""{"version":1}""")]
    [InlineData("""{"version":-1,"domains":{}}""")]
    [InlineData("""{"version":1,"domains":{"X":["a1"]}}""")]
    [InlineData("""{"version":1,"domains":{"x":["a1","A 2"]}}""")]
    [InlineData("""{"version":1,"domains":{"x":null}}""")]
    [InlineData("""{"version":1,"domains":{},"revoked":["*"]}""")]
    [InlineData("""{"version":1,"domains":{},"revoked_keys":["%%%"]}""")]
    [InlineData("""{"version":"1","domains":{}}""")]
    public void Decoding_refuses_what_is_not_a_valid_table(string json) =>
        Assert.Throws<ProtocolException>(() => DomainTableCodec.DecodeText(json));

    [Fact]
    public void The_table_from_a_cluster_file_is_version_zero_or_the_default()
    {
        const string Head = """
            [cluster]
            name = "lab"
            id = "0123456789abcdef"
            network = "100.64.0.0/16"

            [sites.a]
            subnet = "100.64.1.0/24"
            wan = "198.51.100.7:7000"
            lan = "10.0.0.1:7001"
            """;
        Assert.True(DomainTable.FromClusterFile(ClusterFile.Parse(Head)).IsDefault);
        var table = DomainTable.FromClusterFile(ClusterFile.Parse(Head + "\n[domains]\nx = [\"a1\", \"b1\"]\n"));
        Assert.Equal(0, table.Version);
        Assert.Equal(["x"], table.Names);
        Assert.False(table.IsDefault);
    }
}
