namespace Isthmus.Bench.Cases;

/// <summary>
/// Client and server are unmodified programs started with <c>isthmus run --node</c>; the client dials the
/// server node's VIP. Relay CPU is the cluster's routers and agents.
/// </summary>
public sealed class IsthmusCase(string name, string description, BenchCluster cluster, string client, string server, string reference) : BenchCase
{
    public const string IntraSite = "isthmus-intra";
    public const string InterSite = "isthmus-inter";
    public const string InterSiteCleartext = "isthmus-clear";
    public const string InterSiteLegs = "isthmus-legs";

    private string _isthmus = "isthmus";

    public override string Name => name;

    public override string Description => description;

    public override string? Reference => reference;

    public override string ClientNode => client;

    public override string ServerNode => server;

    public override string Target => cluster.Vip(server);

    public override IEnumerable<int> RelayPids => cluster.Pids;

    public override IEnumerable<int> RouterPids => cluster.RouterPids;

    public override IReadOnlyDictionary<string, string>? Environment => cluster.Environment;

    public override async Task SetupAsync(BenchContext context, CancellationToken cancellationToken)
    {
        _isthmus = context.Settings.IsthmusPath;
        await cluster.StartAsync(context, cancellationToken).ConfigureAwait(false);
    }

    public override Task TeardownAsync(BenchContext context) => cluster.StopAsync(context);

    public override (string File, IReadOnlyList<string> Args) Wrap(bool server, string file, IReadOnlyList<string> args) =>
        (_isthmus, ["run", "--node", server ? ServerNode : ClientNode, "--", file, .. args]);
}
