using System.Globalization;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>A cluster whose routers carry stream legs on one WAN trunk per peer (the default) and treat a leg as dead after 3 s.</summary>
public sealed class WanTrunkFixture() : SmallClusterFixture(WanOutageFixture.RouterArguments);

/// <summary>
/// Inter-site streams ride on WAN trunks: many connections share one TLS connection between the routers (no
/// handshake per stream), and after an outage every stream resumes over one new trunk.
/// </summary>
public sealed class WanTrunkTests(WanTrunkFixture fixture, ITestOutputHelper output) : IClassFixture<WanTrunkFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private OverlayCluster Cluster => fixture.Cluster;

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    /// <summary>
    /// 500 connections a1 → b1, one after another, each echoing 16 known bytes: all echo exactly, and both routers'
    /// logs show no trunk came up during them but the first (so no connection made a WAN connection or TLS handshake
    /// of its own).
    /// </summary>
    [Fact]
    public Task SequentialConnections_ShareOneTrunk_EachEchoesExactly() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        const int count = 500;
        var echo = Cluster.StartProgram("b1", "/usr/bin/python3", Script("wan_echo.py"), Cluster.Vips["b1"], "7610");
        try
        {
            await echo.WaitForLineAsync(l => l == "LISTENING", Short);
            var (dialsBefore, servedBefore) = (TrunkDials(), TrunksServed());
            var run = await Cluster.RunProgramAsync("a1", TimeSpan.FromSeconds(180), "/usr/bin/python3", Script("wan_connect_loop.py"),
                Cluster.Vips["b1"], "7610", count.ToString(CultureInfo.InvariantCulture));
            Assert.True(run.ExitCode == 0, run.ToString());
            var fields = run.StandardOutput.Trim().Split(' ');
            Assert.Equal(["CONNECTED", count.ToString(CultureInfo.InvariantCulture), "0"], fields[..3]);
            output.WriteLine($"{count} sequential inter-site connections in {fields[3]} s ({count / double.Parse(fields[3], CultureInfo.InvariantCulture):0} per second, Python client, Debug logs)");
            // The first connection of the cluster dials the trunk; every other one rides on it.
            Assert.Equal(Math.Max(dialsBefore, 1), TrunkDials());
            Assert.Equal(Math.Max(servedBefore, 1), TrunksServed());
            var metrics = await Cluster.ScrapeRouterMetricsAsync("a");
            Assert.Equal(1, OverlayCluster.MetricValue(metrics, "isthmus_router_wan_trunks_up"));
            Assert.Equal(TrunkDials(), OverlayCluster.MetricValue(metrics, "isthmus_router_wan_trunks_dialled_total"));
        }
        finally
        {
            await echo.StopAsync();
        }
    });

    /// <summary>
    /// 200 idle connections a1 → b1 and an 8 s WAN cut (longer than the 3 s dead timer): all 200 echo afterwards,
    /// no program saw a reset, and router a dialled one new trunk (at most a few under heavy load) for all of them.
    /// </summary>
    [Fact]
    public Task WanCut_EveryStreamResumes_OverOneNewTrunk() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        const int count = 200;
        var echo = Cluster.StartProgram("b1", "/usr/bin/python3", Script("wan_echo.py"), Cluster.Vips["b1"], "7611");
        HostProcess? idle = null;
        try
        {
            await echo.WaitForLineAsync(l => l == "LISTENING", Short);
            idle = Cluster.StartProgram("a1", "/usr/bin/python3", Script("wan_idle.py"), Cluster.Vips["b1"], "7611", count.ToString(CultureInfo.InvariantCulture));
            await idle.WaitForLineAsync(l => l == $"OPEN {count}", TimeSpan.FromSeconds(120));
            idle.WriteStdin("CHECK\n");
            await idle.WaitForLineAsync(l => l == $"CHECKED {count} 0", TimeSpan.FromSeconds(60));
            var trunksBefore = TrunkDials();

            await Cluster.Topology.OutageAsync("a", TimeSpan.FromSeconds(8));

            idle.WriteStdin("CHECK\n");
            await idle.WaitForLineAsync(
                l => l.StartsWith("CHECKED", StringComparison.Ordinal) && idle.StandardOutputLines.Count(x => x.StartsWith("CHECKED", StringComparison.Ordinal)) >= 2,
                TimeSpan.FromSeconds(120), OutputStream.StandardOutput);
            Assert.Equal($"CHECKED {count} 0", idle.StandardOutputLines.Last(x => x.StartsWith("CHECKED", StringComparison.Ordinal)));
            Assert.DoesNotContain("RESET", echo.StandardOutput, StringComparison.Ordinal);
            // All 200 streams resumed over the new trunk(s), none dialled a connection of its own. Usually exactly one
            // new trunk; CI once saw two on a machine also running a benchmark (a trunk that came up, then missed its
            // 3 s dead timer under that load and was dialled again), so the bound is a few, far below 200.
            Assert.InRange(TrunkDials() - trunksBefore, 1, 3);
            Assert.Contains(Cluster.Routers["a"].StandardErrorLines, l => l.Contains(" resumed after ", StringComparison.Ordinal));
        }
        finally
        {
            if (idle is not null)
            {
                await idle.StopAsync();
            }

            await echo.StopAsync();
            await Cluster.Topology.RestoreWanAsync("a");
        }
    });

    private int TrunkDials() => Cluster.Routers["a"].StandardErrorLines.Count(l => l.Contains("Trunk to site b up", StringComparison.Ordinal));

    private int TrunksServed() => Cluster.Routers["b"].StandardErrorLines.Count(l => l.Contains("Trunk from site a up", StringComparison.Ordinal));
}
