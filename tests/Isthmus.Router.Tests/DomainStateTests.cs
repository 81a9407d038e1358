using Isthmus.Core;
using Isthmus.Core.Domains;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Router.Tests;

public sealed class DomainStateTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("isthmus-domains-").FullName;

    private static DomainTable FileTable() => new(0, [KeyValuePair.Create<string, IEnumerable<string>>("x", ["a1", "b1"])]);

    private DomainState NewState() => new(_state, FileTable(), NullLogger.Instance);

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public void Starts_from_the_cluster_file_then_keeps_run_time_changes_across_restarts()
    {
        var state = NewState();
        Assert.Equal(FileTable().Digest, state.Current.Digest);
        var changed = state.Apply(t => t.Add("x", ["a2"]), "test");
        Assert.Equal(1, changed.Version);
        Assert.True(File.Exists(Path.Combine(_state, "domains.json")));

        var restarted = NewState();
        Assert.Equal(changed.Digest, restarted.Current.Digest);
        Assert.True(restarted.Current.Shares(new NodeRef("a1", "a"), new NodeRef("a2", "a")));
    }

    [Fact]
    public void Adopts_only_newer_tables_and_tells_in_order()
    {
        var state = NewState();
        var seen = new List<(long, long)>();
        state.Changed += (previous, current) => seen.Add((previous.Version, current.Version));
        var v2 = FileTable().Add("x", ["a2"]).Remove("x", ["a2"], drain: false);
        Assert.True(state.TryAdopt(v2, "peer"));
        Assert.False(state.TryAdopt(FileTable().Add("x", ["c1"]), "peer")); // version 1 < 2
        Assert.False(state.TryAdopt(v2, "peer")); // the same table again
        state.Apply(t => t.Create("y"), "admin");
        Assert.Equal([(0L, 2L), (2L, 3L)], seen);
    }

    [Fact]
    public void A_failed_change_changes_nothing()
    {
        var state = NewState();
        Assert.Throws<DomainChangeException>(() => state.Apply(t => t.Add("nope", ["a1"]), "admin"));
        Assert.Equal(0, state.Current.Version);
        Assert.False(File.Exists(Path.Combine(_state, "domains.json")));
    }

    [Fact]
    public void Augment_adds_what_only_this_router_knows_before_anyone_is_told()
    {
        var state = NewState();
        state.Augment = t => t.IsRevoked(new NodeRef("b1", "b")) && !t.IsKeyRevoked("AAAA") ? t.WithRevokedKeys(["AAAA"]) : t;
        DomainTable? told = null;
        state.Changed += (_, current) => told = current;
        state.Apply(t => t.Revoke("b1"), "admin");
        Assert.NotNull(told);
        Assert.True(told.IsKeyRevoked("AAAA"));
        Assert.Equal(2, state.Current.Version);
    }

    [Fact]
    public void A_damaged_state_file_is_a_clear_error()
    {
        File.WriteAllText(Path.Combine(_state, "domains.json"), "{ nope");
        var e = Assert.Throws<UserException>(NewState);
        Assert.Contains("domains.json is damaged", e.Message, StringComparison.Ordinal);
    }
}
