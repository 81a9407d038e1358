using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>A cluster of its own: these tests kill routers.</summary>
public sealed class RouterRestartFixture() : SmallClusterFixture(WanOutageFixture.RouterArguments);

/// <summary>
/// A router killed with SIGKILL and started again: streams through it end with resets on both sides (the
/// surviving router's resume is refused as an unknown stream, or it sees the restarted router's new epoch),
/// never hang; nodes re-enrol by themselves with their VIPs, and new connections work at once (the first
/// connect after the restarted router listens echoes exactly).
/// </summary>
public sealed class RouterRestartTests(RouterRestartFixture fixture, ITestOutputHelper output) : IClassFixture<RouterRestartFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private OverlayCluster Cluster => fixture.Cluster;

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    [Theory]
    [InlineData("b")] // the accepting router (the client's router re-dials and is refused)
    [InlineData("a")] // the dialling router (the server's router sees its new epoch)
    public Task RouterSigkill_StreamsReset_NewConnectionsWork(string killed) => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        var port = killed == "a" ? "7610" : "7611";
        var echo = Cluster.StartProgram("b1", "/usr/bin/python3", Script("wan_echo.py"), Cluster.Vips["b1"], port);
        // A second echo server for the first connect after the restart, so its close is not taken for the old streams' end.
        var freshPort = killed == "a" ? "7612" : "7613";
        var freshEcho = Cluster.StartProgram("b1", "/usr/bin/python3", Script("wan_echo.py"), Cluster.Vips["b1"], freshPort);
        HostProcess? idle = null;
        try
        {
            await echo.WaitForLineAsync(l => l == "LISTENING", Short);
            await freshEcho.WaitForLineAsync(l => l == "LISTENING", Short);
            idle = Cluster.StartProgram("a1", "/usr/bin/python3", Script("wan_idle.py"), Cluster.Vips["b1"], port, "3");
            await idle.WaitForLineAsync(l => l == "OPEN 3", Short);
            idle.WriteStdin("CHECK\n");
            await idle.WaitForLineAsync(l => l == "CHECKED 3 0", Short);

            Assert.True(Cluster.Routers[killed].Kill());
            await Cluster.Routers[killed].WaitForExitAsync(Short);
            Cluster.StartRouter(killed);
            await Cluster.WaitForRouterAsync(killed);

            // A connect started as soon as the restarted router listens works, first time: the agent noticed the
            // lost router, its connect waits for the re-enrolment (no EACCES from a session key the new router
            // does not know), and a restarted router waits briefly for its bound nodes to return.
            var first = await Cluster.RunProgramAsync("a1", Short, "/usr/bin/python3", Script("wan_echo_check.py"), Cluster.Vips["b1"], freshPort, "100000");
            output.WriteLine($"first connect after the restart: {first.StandardOutput.Trim()}");
            Assert.True(first.ExitCode == 0, first.ToString());
            Assert.Contains("ECHOED 100000 OK", first.StandardOutput, StringComparison.Ordinal);
            Assert.DoesNotContain("EACCES", first.StandardOutput + first.StandardError, StringComparison.Ordinal);

            // Both ends learn that their connections ended, within seconds, not after the outage maximum: a reset
            // where the surviving router ends them; where the killed router's own LAN legs die, the kernel
            // closed them with a FIN, which the agent cannot tell from a half-close (known gap, ARCHITECTURE.md).
            await echo.WaitForLineAsync(l => l == "RESET" || (killed == "b" && l == "CLOSED"), Short);
            idle.WriteStdin("CHECK\n");
            await idle.WaitForLineAsync(l => l == "CHECKED 0 3", Short);

            // The nodes re-enrol on their own and keep their VIPs; new connections across sites then work.
            var vip = Cluster.Vips["b1"];
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            CommandResult? last = null;
            while (DateTime.UtcNow < deadline)
            {
                last = await Cluster.RunProgramAsync("a1", Short, "/usr/bin/python3", Script("wan_source.py"), vip, port, "100000");
                if (last.ExitCode == 0)
                {
                    break;
                }

                await Task.Delay(500);
            }

            Assert.True(last is { ExitCode: 0 }, last?.ToString());
            Assert.Contains("REPLY 100000 bytes", last!.StandardOutput, StringComparison.Ordinal);
            var resolved = await Cluster.IsthmusAsync(Cluster.Host("a1"), Short, "resolve", "b1", "--node", "a1");
            Assert.Contains(vip, resolved.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            if (idle is not null)
            {
                await idle.StopAsync();
            }

            await echo.StopAsync();
            await freshEcho.StopAsync();
        }
    });
}
