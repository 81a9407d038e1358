namespace Isthmus.Bench.Cases;

/// <summary>
/// One way for a client at one node to reach a server at another: native, through Isthmus, or through a peer
/// (relay or VPN). A case says where the client and the server run, what address the client dials, how to
/// wrap their commands (e.g. <c>isthmus run --node a1 --</c>), and which processes relay its bytes.
/// </summary>
public abstract class BenchCase
{
    public abstract string Name { get; }

    public abstract string Description { get; }

    /// <summary>The native case this one's figures are divided by for the ratio; null for the native cases themselves.</summary>
    public virtual string? Reference => NativeCase.GatewayToGateway;

    public abstract string ClientNode { get; }

    public abstract string ServerNode { get; }

    /// <summary>The address the client dials (the server's, a relay's, or a VIP).</summary>
    public abstract string Target { get; }

    /// <summary>Programs this case needs on PATH (a missing one skips the case with a note).</summary>
    public virtual IReadOnlyList<string> Requires => [];

    /// <summary>The processes whose CPU counts as relay CPU (their whole process trees).</summary>
    public virtual IEnumerable<int> RelayPids => [];

    /// <summary>The Isthmus routers among <see cref="RelayPids"/> (their resident set is a headline figure).</summary>
    public virtual IEnumerable<int> RouterPids => [];

    /// <summary>The relay forks a process per connection (socat): the idle-connection tool leaves it out.</summary>
    public virtual bool ForksPerConnection => false;

    /// <summary>Once per run, before the first round (keys, clusters).</summary>
    public virtual Task SetupAsync(BenchContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Before this case's measurements in each round (start the relay or tunnel).</summary>
    public virtual Task StartAsync(BenchContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>After this case's measurements in each round.</summary>
    public virtual Task StopAsync(BenchContext context) => Task.CompletedTask;

    /// <summary>Once at the end of the run.</summary>
    public virtual Task TeardownAsync(BenchContext context) => Task.CompletedTask;

    /// <summary>The command line that runs <paramref name="file"/> as the client (or server) of this case.</summary>
    public virtual (string File, IReadOnlyList<string> Args) Wrap(bool server, string file, IReadOnlyList<string> args) => (file, args);

    public virtual IReadOnlyDictionary<string, string>? Environment => null;
}
