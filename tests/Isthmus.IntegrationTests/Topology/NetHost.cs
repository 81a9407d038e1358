namespace Isthmus.IntegrationTests.Topology;

/// <summary>A network namespace of a <see cref="SiteTopology"/> that programs can run in.</summary>
public class NetNamespace
{
    internal NetNamespace(SiteTopology topology, string name, string ns)
    {
        Topology = topology;
        Name = name;
        Namespace = ns;
    }

    /// <summary>Short name without the run prefix: "wan", "a-gw", "a-n1".</summary>
    public string Name { get; }

    /// <summary>Namespace name as `ip netns` knows it, e.g. "ik3x9q-a-gw".</summary>
    public string Namespace { get; }

    /// <summary>"net:[inode]" of the namespace, known once it is created.</summary>
    public string? NamespaceId { get; internal set; }

    internal SiteTopology Topology { get; }

    /// <summary>Starts <paramref name="file"/> in this namespace in a process group of its own (see <see cref="HostProcess"/>).</summary>
    /// <param name="file">Absolute path, or a bare name looked up in the system directories first, then PATH.</param>
    public HostProcess Start(string file, params string[] args) => Start(file, args, environment: null);

    /// <summary>Starts <paramref name="file"/> with extra environment variables (a null value removes a variable).</summary>
    public HostProcess Start(string file, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment) =>
        Topology.StartProcess(this, file, args, environment);

    /// <summary>
    /// Runs <paramref name="file"/> to completion and returns exit code and output (any exit code).
    /// On timeout (default 30 s) kills its process group and throws <see cref="TimeoutException"/> with the output.
    /// </summary>
    public async Task<CommandResult> RunAsync(
        string file,
        IReadOnlyList<string> args,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var process = Start(file, args, environment);
        process.CloseStdin();
        var limit = timeout ?? Shell.DefaultTimeout;
        int code;
        try
        {
            code = await process.WaitForExitAsync(limit).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await process.StopAsync(TimeSpan.Zero).ConfigureAwait(false);
            throw new TimeoutException($"[{Name}] timed out after {limit.TotalSeconds:0.###} s, killed\n{process.Describe()}");
        }

        return new CommandResult($"[{Name}] {Shell.FormatCommand(file, args)}", code, process.StandardOutput, process.StandardError);
    }

    /// <summary>`ip -n NS args…`; throws <see cref="CommandFailedException"/> on failure. Returns stdout.</summary>
    public Task<string> IpAsync(params string[] args) => Shell.CheckAsync("ip", ["-n", Namespace, .. args]);

    /// <summary>`tc -n NS args…`; throws <see cref="CommandFailedException"/> on failure. Returns stdout.</summary>
    public Task<string> TcAsync(params string[] args) => Shell.CheckAsync("tc", ["-n", Namespace, .. args]);

    /// <summary>`ping -c1 -W1 -n address` from this namespace (not tracked as a HostProcess: it is short and bounded).</summary>
    public Task<CommandResult> PingAsync(string address) =>
        Shell.RunAsync("ip", ["netns", "exec", Namespace, Shell.Resolve("ping"), "-c1", "-W1", "-n", address], TimeSpan.FromSeconds(10));

    /// <summary>True when one ping to <paramref name="address"/> is answered within 1 s.</summary>
    public async Task<bool> CanPingAsync(string address) => (await PingAsync(address).ConfigureAwait(false)).Succeeded;

    public override string ToString() => Namespace;
}

/// <summary>A gateway or compute node: a namespace with an address on its site's LAN.</summary>
public class NetHost : NetNamespace
{
    internal NetHost(SiteTopology topology, Site site, string name, string ns, string address, string lanInterface)
        : base(topology, name, ns)
    {
        Site = site;
        Address = address;
        LanInterface = lanInterface;
    }

    public Site Site { get; }

    /// <summary>LAN address (no prefix length), e.g. "192.0.2.10".</summary>
    public string Address { get; }

    /// <summary>Interface that holds <see cref="Address"/> (the LAN bridge on a gateway, the veth on a node).</summary>
    public string LanInterface { get; }
}

/// <summary>The head node of a site: LAN bridge with .1 and one veth into the WAN bridge.</summary>
public sealed class GatewayHost : NetHost
{
    internal GatewayHost(SiteTopology topology, Site site, string name, string ns, string address, string lanBridge, string wanAddress, string wanInterface)
        : base(topology, site, name, ns, address, lanBridge)
    {
        WanAddress = wanAddress;
        WanInterface = wanInterface;
    }

    /// <summary>WAN address, 203.0.113.(site index + 1).</summary>
    public string WanAddress { get; }

    /// <summary>Gateway side of the WAN veth (in this namespace).</summary>
    public string WanInterface { get; }
}

/// <summary>One site: gateway, compute nodes, and the addresses and interface names of its links.</summary>
public sealed class Site
{
    internal Site(string name, int index, string lanPrefix)
    {
        Name = name;
        Index = index;
        LanPrefix = lanPrefix;
    }

    public string Name { get; }

    /// <summary>Position in the spec; decides the subnets.</summary>
    public int Index { get; }

    /// <summary>LAN subnet in CIDR form, e.g. "192.0.2.0/24".</summary>
    public string Subnet => $"{LanPrefix}.0/24";

    public GatewayHost Gateway { get; internal set; } = null!;

    public IReadOnlyList<NetHost> Nodes { get; internal set; } = [];

    /// <summary>WAN side of the gateway's WAN veth (in the wan namespace, a port of the WAN bridge).</summary>
    public string WanPort { get; internal set; } = "";

    internal string LanPrefix { get; }

    public override string ToString() => Name;
}
