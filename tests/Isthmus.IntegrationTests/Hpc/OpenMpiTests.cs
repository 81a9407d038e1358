using System.Globalization;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Hpc;

/// <summary>
/// Open MPI's <c>mpirun</c> on one node runs NetPIPE (<c>NPopenmpi</c>) with one rank on its own node and one
/// on the other, launching the remote <c>orted</c> through ssh: sshd runs on the remote node (interposed on
/// the overlay) with a ForceCommand that runs the requested command as a program of that node, because sshd
/// clears LD_PRELOAD from sessions. Both the runtime (oob) and the MPI traffic (btl tcp) are forced onto
/// the cluster CIDR with <c>*_if_include</c>, so on the overlay they must find the node's virtual interface.
/// Across sites on the overlay (a1 → b1), and natively within one LAN as the baseline.
/// </summary>
public sealed class OpenMpiTests(HpcFixture fixture, ITestOutputHelper output) : IClassFixture<HpcFixture>
{
    private const int SshPort = 2222;
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(300);

    [Fact]
    public async Task NetPipe_OneRankPerSite_AcrossSites() => await RunAsync(await fixture.OverlayAsync(), "a1", "b1");

    [Fact]
    public async Task NetPipe_OneRankPerNode_NativeBaseline() => await RunAsync(await fixture.NativeAsync(), "a1", "a2");

    private async Task RunAsync(HpcNodes nodes, string head, string remote)
    {
        var work = HpcNodes.CreateWorkDirectory("mpi");
        // sshd runs the session's command through the user's shell as `sh -c FORCECOMMAND`, with the original
        // command in $SSH_ORIGINAL_COMMAND; the prefix makes it (orted, and the rank it forks) a program of the node.
        var forceCommand = "exec " + string.Join(' ', nodes.InterposePrefix(remote)) + " /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"";
        var sshdSetup = await SshdSetup.CreateAsync(work, nodes.Address(remote), SshPort, forceCommand);
        var config = sshdSetup.Config;
        var hosts = Path.Combine(work, "hosts");
        await File.WriteAllTextAsync(hosts, $"{nodes.PeerName(head)} slots=1\n{nodes.PeerName(remote)} slots=1\n");
        var netpipe = Path.Combine(work, "np.out");
        var cidr = nodes.Cidr;
        string[] mpirun =
        [
            "--allow-run-as-root", "-np", "2", "--hostfile", hosts,
            // Each rank has a "host" of its own: without --bind-to none each would be bound to core 0, and
            // busy-polling ranks on a loaded 2-core runner need mpi_yield_when_idle (see shared recipes).
            "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1",
            "--mca", "plm_rsh_agent", $"/usr/bin/ssh -p {SshPort} -i {work}/user -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            "--mca", "pml", "ob1", "--mca", "btl", "tcp,self",
            "--mca", "btl_tcp_if_include", cidr, "--mca", "oob_tcp_if_include", cidr, "--mca", "btl_tcp_disable_family", "6",
            "NPopenmpi", "-p", "0", "-n", "100", "-u", "1048576", "-o", netpipe,
        ];

        var sshd = nodes.Start(remote, "/usr/sbin/sshd", "-D", "-e", "-f", config);
        try
        {
            await nodes.WithLogsOnFailureAsync(output, () => [], async () =>
            {
                await sshd.WaitForLineAsync(l => l.Contains("Server listening on", StringComparison.Ordinal), Short);
                var result = await nodes.RunAsync(head, Long, "mpirun.openmpi", mpirun);
                output.WriteLine(result.ToString());
                Assert.True(result.ExitCode == 0, result.ToString());
                // NetPIPE's ranks print "RANK: processor name": rank 0 on the head node, rank 1 on the remote one.
                var lines = result.StandardOutput.Split('\n').Select(l => l.Trim()).ToList();
                Assert.Contains($"0: {nodes.HostName(head)}", lines);
                Assert.Contains($"1: {nodes.HostName(remote)}", lines);
                // orted was launched through ssh from the head node's address (its VIP on the overlay).
                await sshd.WaitForLineAsync(l => l.Contains($"Accepted publickey for root from {nodes.Address(head)} ", StringComparison.Ordinal), Short);

                // NetPIPE's output file: "bytes Mbit/s seconds" per size, from 1 byte up to 1 MiB.
                var rows = (await File.ReadAllLinesAsync(netpipe))
                    .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    .Where(f => f.Length >= 3)
                    .Select(f => (Bytes: long.Parse(f[0], CultureInfo.InvariantCulture), Mbps: double.Parse(f[1], CultureInfo.InvariantCulture), Seconds: double.Parse(f[2], CultureInfo.InvariantCulture)))
                    .ToList();
                var first = Assert.Single(rows, r => r.Bytes == 1);
                var last = Assert.Single(rows, r => r.Bytes == 1048576);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"NetPIPE {nodes} {head}<->{remote}: latency(1 B, one-way) {first.Seconds * 1e6:0.0} us, bandwidth(1 MiB) {last.Mbps:0} Mbit/s ({rows.Count} sizes)"));
            });
        }
        finally
        {
            await sshd.StopAsync();
            HpcNodes.DeleteWorkDirectory(work);
        }
    }
}
