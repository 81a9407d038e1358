using System.Globalization;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>Routers without trunks (<c>--wan-trunks 0</c>): a TCP + TLS connection per inter-site stream leg, as before trunks.</summary>
public sealed class StreamLegFixture() : SmallClusterFixture([.. WanOutageFixture.RouterArguments, "--wan-trunks", "0"]);

/// <summary>The per-stream WAN legs stay a working choice: connections echo, and survive a cut by resuming leg by leg.</summary>
public sealed class StreamLegTests(StreamLegFixture fixture, ITestOutputHelper output) : IClassFixture<StreamLegFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private OverlayCluster Cluster => fixture.Cluster;

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    /// <summary>
    /// 50 sequential connections echo exactly; 50 idle ones survive a 6 s cut (longer than the 3 s dead timer) and
    /// echo afterwards; no trunk was ever dialled.
    /// </summary>
    [Fact]
    public Task ConnectionsEcho_AndSurviveCut_WithoutTrunks() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        const int count = 50;
        var echo = Cluster.StartProgram("b1", "/usr/bin/python3", Script("wan_echo.py"), Cluster.Vips["b1"], "7612");
        HostProcess? idle = null;
        try
        {
            await echo.WaitForLineAsync(l => l == "LISTENING", Short);
            var run = await Cluster.RunProgramAsync("a1", TimeSpan.FromSeconds(120), "/usr/bin/python3", Script("wan_connect_loop.py"),
                Cluster.Vips["b1"], "7612", count.ToString(CultureInfo.InvariantCulture));
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.StartsWith($"CONNECTED {count} 0 ", run.StandardOutput.Trim(), StringComparison.Ordinal);
            output.WriteLine(run.StandardOutput.Trim());

            idle = Cluster.StartProgram("a1", "/usr/bin/python3", Script("wan_idle.py"), Cluster.Vips["b1"], "7612", count.ToString(CultureInfo.InvariantCulture));
            await idle.WaitForLineAsync(l => l == $"OPEN {count}", TimeSpan.FromSeconds(60));
            // Every connection carries a byte end to end before the cut, so all of them are open across the WAN.
            idle.WriteStdin("CHECK\n");
            await idle.WaitForLineAsync(l => l == $"CHECKED {count} 0", TimeSpan.FromSeconds(60));
            await Cluster.Topology.OutageAsync("a", TimeSpan.FromSeconds(6));
            idle.WriteStdin("CHECK\n");
            await idle.WaitForLineAsync(
                l => l.StartsWith("CHECKED", StringComparison.Ordinal) && idle.StandardOutputLines.Count(x => x.StartsWith("CHECKED", StringComparison.Ordinal)) >= 2,
                TimeSpan.FromSeconds(120), OutputStream.StandardOutput);
            Assert.Equal($"CHECKED {count} 0", idle.StandardOutputLines.Last(x => x.StartsWith("CHECKED", StringComparison.Ordinal)));
            Assert.DoesNotContain("RESET", echo.StandardOutput, StringComparison.Ordinal);
            Assert.Contains(Cluster.Routers["a"].StandardErrorLines, l => l.Contains(" resumed after ", StringComparison.Ordinal));
            Assert.DoesNotContain(Cluster.Routers["a"].StandardErrorLines, l => l.Contains("Trunk to site", StringComparison.Ordinal));
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
}
