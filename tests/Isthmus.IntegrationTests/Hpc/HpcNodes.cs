using System.Text.RegularExpressions;
using Isthmus.IntegrationTests.Overlay;
using Isthmus.IntegrationTests.Topology;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Hpc;

/// <summary>
/// Where and how an HPC test runs its programs, so that one test body serves two placements:
/// <list type="bullet">
/// <item><b>Overlay</b>: programs run interposed (<c>isthmus run --node NODE</c>), peers are named by their
/// overlay name and reached at their VIP, the interface CIDR is the cluster network, and a program's host
/// name is its node name (the cluster file sets <c>node_hostname = true</c>).</item>
/// <item><b>Native</b>: no Isthmus; programs run in the node's namespace and use its real LAN address, which
/// only reaches nodes of the same site. The host name is the machine's (namespaces share it).</item>
/// </list>
/// Nodes are named SITE + number ("a1" = site a, first node) in both.
/// </summary>
public sealed partial class HpcNodes
{
    private readonly OverlayCluster? _cluster;
    private readonly SiteTopology _topology;

    private HpcNodes(OverlayCluster? cluster, SiteTopology topology)
    {
        _cluster = cluster;
        _topology = topology;
    }

    public bool IsOverlay => _cluster is not null;

    /// <summary>The Isthmus cluster (overlay placement only).</summary>
    public OverlayCluster Cluster => _cluster ?? throw new InvalidOperationException("native placement has no Isthmus cluster");

    /// <summary>The network that the programs' interface selection (Open MPI's *_if_include) must pick.</summary>
    public string Cidr => IsOverlay ? OverlayCluster.Network : _topology.SiteList[0].Subnet;

    public static HpcNodes Overlay(OverlayCluster cluster) => new(cluster, cluster.Topology);

    public static HpcNodes Native(SiteTopology topology) => new(null, topology);

    /// <summary>The address peers reach <paramref name="node"/> at: its VIP, or its LAN address natively.</summary>
    public string Address(string node) => IsOverlay ? Cluster.Vips[node] : Host(node).Address;

    /// <summary>How peers name <paramref name="node"/> (host lists, ssh): its overlay short name, or its LAN address natively.</summary>
    public string PeerName(string node) => IsOverlay ? node : Host(node).Address;

    /// <summary>What <c>hostname</c> prints in a program of <paramref name="node"/>.</summary>
    public string HostName(string node) => IsOverlay ? node : File.ReadAllText("/proc/sys/kernel/hostname").Trim();

    /// <summary>
    /// The command prefix that makes a command a program of <paramref name="node"/> when something other than
    /// the test starts it (sshd's ForceCommand, a Slurm TaskProlog): <c>env ISTHMUS_RUNTIME_DIR=… isthmus run
    /// --node NODE --</c>, or nothing natively.
    /// </summary>
    public IReadOnlyList<string> InterposePrefix(string node) => IsOverlay
        ? ["/usr/bin/env", $"ISTHMUS_RUNTIME_DIR={Cluster.RuntimeDirectory}", IsthmusPaths.Isthmus, "run", "--node", node, "--"]
        : [];

    public NetHost Host(string node)
    {
        if (IsOverlay)
        {
            return Cluster.Host(node);
        }

        var match = NodeNameRegex().Match(node);
        return match.Success
            ? _topology.Sites[match.Groups[1].Value].Nodes[int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) - 1]
            : throw new ArgumentException($"node names are SITE + number, like a1: '{node}'");
    }

    /// <summary>Starts <paramref name="file"/> as a program of <paramref name="node"/> (in its own process group).</summary>
    public HostProcess Start(string node, string file, params string[] args) =>
        IsOverlay ? Cluster.StartProgram(node, file, args) : Host(node).Start(file, args);

    /// <summary>Runs <paramref name="file"/> as a program of <paramref name="node"/> to completion (killed at the timeout).</summary>
    public Task<CommandResult> RunAsync(string node, TimeSpan timeout, string file, params string[] args) =>
        IsOverlay ? Cluster.RunProgramAsync(node, timeout, file, args) : Host(node).RunAsync(file, args, timeout);

    /// <summary>
    /// Runs <paramref name="test"/>; if it fails, writes the tail of each of <paramref name="files"/> (the
    /// test's own daemon logs, evaluated then) and, on the overlay, of every router and agent to the output.
    /// </summary>
    public async Task WithLogsOnFailureAsync(ITestOutputHelper output, Func<IEnumerable<string>> files, Func<Task> test)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(test);
        try
        {
            if (IsOverlay)
            {
                await Cluster.WithLogsOnFailureAsync(output, test).ConfigureAwait(false);
            }
            else
            {
                await test().ConfigureAwait(false);
            }
        }
        catch
        {
            foreach (var file in files().Where(File.Exists))
            {
                output.WriteLine($"--- {file} (last 40 lines)");
                foreach (var line in File.ReadLines(file).TakeLast(40))
                {
                    output.WriteLine(line);
                }
            }

            throw;
        }
    }

    /// <summary>Fails at once (with its output) when a daemon the test waits on has already exited.</summary>
    public static void ThrowIfExited(params HostProcess[] daemons)
    {
        ArgumentNullException.ThrowIfNull(daemons);
        foreach (var daemon in daemons)
        {
            if (daemon.HasExited)
            {
                throw new HostProcessException($"{daemon.Label} exited while the test waited for it\n{daemon.Describe()}");
            }
        }
    }

    /// <summary>A fresh directory for one test's files (configuration, state, logs, sockets); delete it when done.</summary>
    public static string CreateWorkDirectory(string what)
    {
        var dir = Directory.CreateTempSubdirectory($"isthmus-{what}-").FullName;
        // Daemons that drop privileges (munged's socket directory must be o+x) and sshd read it.
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return dir;
    }

    public static void DeleteWorkDirectory(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public override string ToString() => IsOverlay ? "overlay" : "native";

    [GeneratedRegex("^([a-z][a-z0-9]{0,3}?)([0-9]+)$")]
    private static partial Regex NodeNameRegex();
}
