using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// Kernel-direct streams between two nodes of one site (docs/ARCHITECTURE.md, "Direct streams inside a site"),
/// with unmodified Python programs under <c>isthmus run</c>: the router grants the stream and relays none of its
/// bytes, both programs see VIPs (accept, getsockname, getpeername), blocking and non-blocking connects work,
/// a destination the domains forbid is still refused with EHOSTUNREACH, and every case the direct path cannot
/// take (another site, a listener without the shim, direct streams switched off) still works through the router.
/// </summary>
public sealed partial class DirectPathTests(ITestOutputHelper output)
{
    /// <summary>a3 shares no domain with a1; a1, a2 and b1 share x.</summary>
    private const string Domains = """
        [domains]
        x = ["a1", "a2", "b1"]
        """;

    private const int Bytes = 4 << 20;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static string Probe => Path.Combine(AppContext.BaseDirectory, "Scripts", "direct_probe.py");

    [Fact]
    public async Task IntraSiteStream_GoesNodeToNode_RouterRelaysNothing_AddressesAreVips_ForbiddenStillRefused_InterSiteRelayed()
    {
        await using var cluster = await OverlayCluster.StartAsync(output, nodesPerSite: 3, clusterFileTail: Domains);
        await cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var (a1, a2, b1) = (cluster.Vips["a1"], cluster.Vips["a2"], cluster.Vips["b1"]);
            var servers = new[]
            {
                cluster.StartProgram("a2", "/usr/bin/python3", Probe, "serve", a2, "7600"),
                cluster.StartProgram("a3", "/usr/bin/python3", Probe, "serve", cluster.Vips["a3"], "7600"),
                cluster.StartProgram("b1", "/usr/bin/python3", Probe, "serve", b1, "7600"),
            };
            foreach (var server in servers)
            {
                await server.WaitForLineAsync(l => l == "LISTENING", Timeout);
            }

            // Blocking, then non-blocking: both direct, bytes equal both ways, VIPs on both ends.
            foreach (var (how, seen) in new[] { ("blocking", 1), ("nonblocking", 2) })
            {
                var line = await EchoAsync(cluster, "a1", a2, how);
                var connected = ConnectedRegex().Match(line.Connected);
                Assert.True(connected.Success, line.Connected);
                Assert.Equal(a1, connected.Groups[1].Value);
                Assert.Equal($"{a2}:7600", connected.Groups[3].Value);
                var accepted = await servers[0].WaitForLineAsync(l => l.StartsWith("ACCEPTED", StringComparison.Ordinal) && servers[0].StandardOutputLines.Count(x => x.StartsWith("ACCEPTED", StringComparison.Ordinal)) >= seen, Timeout);
                accepted = servers[0].StandardOutputLines.Where(x => x.StartsWith("ACCEPTED", StringComparison.Ordinal)).ElementAt(seen - 1);
                var clientEnd = $"{a1}:{connected.Groups[2].Value}";
                Assert.Equal($"ACCEPTED peer={clientEnd} local={a2}:7600 getpeername={clientEnd}", accepted);
            }

            var metrics = await cluster.ScrapeRouterMetricsAsync("a");
            output.WriteLine(metrics);
            Assert.Equal(2, OverlayCluster.MetricValue(metrics, "isthmus_router_direct_grants_total"));
            Assert.Equal(0, OverlayCluster.MetricValue(metrics, "isthmus_router_relayed_bytes_total"));
            Assert.Equal(0, OverlayCluster.MetricValue(metrics, "isthmus_router_streams_opened_total"));

            // a3 shares no domain with a1: no grant, and the router path refuses it as before.
            var refused = await cluster.RunProgramAsync("a1", Timeout, "/usr/bin/python3", Probe, "echo", cluster.Vips["a3"], "7600", "16", "blocking");
            Assert.Equal("ERROR errno=EHOSTUNREACH", refused.StandardOutput.Trim());
            var refusedNonBlocking = await cluster.RunProgramAsync("a1", Timeout, "/usr/bin/python3", Probe, "echo", cluster.Vips["a3"], "7600", "16", "nonblocking");
            Assert.Matches("ERROR errno=(ECONNRESET|EHOSTUNREACH)", refusedNonBlocking.StandardOutput.Trim());

            // Nothing listens on a2:7601: ECONNREFUSED, as natively (the direct attempt fails, the router path reports it).
            var noListener = await cluster.RunProgramAsync("a1", Timeout, "/usr/bin/python3", Probe, "echo", a2, "7601", "16", "blocking");
            Assert.Equal("ERROR errno=ECONNREFUSED", noListener.StandardOutput.Trim());

            // Another site: the agent does not ask for a grant; the router path opens the stream (its bytes
            // travel on resumable WAN legs, which count units rather than relayed bytes). Three grants: the two streams above and the refused port (granted, the far agent
            // refused it, the router path reported it).
            int ClientRelays() => cluster.Agents["a1"].StandardErrorLines.Count(l => l.Contains(" B up, ", StringComparison.Ordinal));
            var clientRelaysBefore = ClientRelays();
            var crossSite = await EchoAsync(cluster, "a1", b1, "blocking");
            // A blocking connect to another site: a1's agent hands its shim a leg header for router a, the program's
            // own socket is the stream's LAN leg, and a1's agent relays nothing either.
            Assert.Equal(clientRelaysBefore, ClientRelays());
            // Router b takes the stream straight to b1's program: it dials b1's direct listener with a grant of its
            // own (the client's real port in it), b1's agent rings and hands the connection over, relaying nothing;
            // the server still sees the client's VIP and port.
            var crossAccepted = await servers[2].WaitForLineAsync(l => l.StartsWith("ACCEPTED", StringComparison.Ordinal), Timeout);
            var crossClient = ConnectedRegex().Match(crossSite.Connected);
            Assert.StartsWith($"ACCEPTED peer={a1}:{crossClient.Groups[2].Value} local={b1}:7600", crossAccepted, StringComparison.Ordinal);
            Assert.Contains(cluster.Agents["b1"].StandardErrorLines, l => l.Contains("Direct stream", StringComparison.Ordinal) && l.Contains($"-> {b1}:7600", StringComparison.Ordinal));
            Assert.DoesNotContain(cluster.Agents["b1"].StandardErrorLines, l => l.Contains(" B in, ", StringComparison.Ordinal));

            // A non-blocking connect to another site goes straight to router a too: its header asks for no leg reply
            // (the connect returns once the header is sent, not after the whole path), bytes equal both ways, neither
            // agent relays, and the server sees the client's VIP and port.
            var crossNonBlocking = await EchoAsync(cluster, "a1", b1, "nonblocking");
            Assert.Equal(clientRelaysBefore, ClientRelays());
            var crossClient2 = ConnectedRegex().Match(crossNonBlocking.Connected);
            Assert.True(crossClient2.Success, crossNonBlocking.Connected);
            Assert.Equal($"{b1}:7600", crossClient2.Groups[3].Value);
            await servers[2].WaitForLineAsync(l => servers[2].StandardOutputLines.Count(x => x.StartsWith("ACCEPTED", StringComparison.Ordinal)) >= 2, Timeout);
            Assert.StartsWith($"ACCEPTED peer={a1}:{crossClient2.Groups[2].Value} local={b1}:7600",
                servers[2].StandardOutputLines.Where(x => x.StartsWith("ACCEPTED", StringComparison.Ordinal)).ElementAt(1), StringComparison.Ordinal);
            Assert.DoesNotContain(cluster.Agents["b1"].StandardErrorLines, l => l.Contains(" B in, ", StringComparison.Ordinal));

            // Nothing listens on b1:7601: a non-blocking connect completes (as through the agent) and the stream is
            // then reset, the one way a connected socket can learn of a failure further on.
            var crossRefused = await cluster.RunProgramAsync("a1", Timeout, "/usr/bin/python3", Probe, "echo", b1, "7601", "16", "nonblocking");
            // A socket reports a reset once: to the reading main thread (ECONNRESET), or, when the reset comes before the
            // probe's first send, to its sender thread (ConnectionResetError or BrokenPipeError on stderr), after which
            // the reader sees the end of the stream with no byte ("OK 0").
            var last = crossRefused.StandardOutput.Trim().Split('\n').Last();
            Assert.True(Regex.IsMatch(last, "^ERROR errno=(ECONNRESET|EPIPE)$")
                || (last.StartsWith("OK 0 ", StringComparison.Ordinal) && Regex.IsMatch(crossRefused.StandardError, "ConnectionResetError|BrokenPipeError")),
                $"not reset: {crossRefused.StandardOutput} {crossRefused.StandardError}");

            metrics = await cluster.ScrapeRouterMetricsAsync("a");
            Assert.Equal(3, OverlayCluster.MetricValue(metrics, "isthmus_router_direct_grants_total"));
            Assert.Equal(2, OverlayCluster.MetricValue(metrics, "isthmus_router_direct_refused_total"));
            Assert.Equal(2, OverlayCluster.MetricValue(metrics, "isthmus_router_streams_opened_total"));
        });
    }

    [Fact]
    public async Task ListenerWithoutShim_GetsTheDirectStreamRelayedByItsAgent_AndDirectOff_UsesTheRouter()
    {
        await using var cluster = await OverlayCluster.StartAsync(output, sites: 1, nodesPerSite: 2);
        await cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var a2 = cluster.Vips["a2"];
            // seccomp mode: no shim in the server, so nothing adopts; the a2 agent relays the direct connection.
            var server = cluster.StartProgramIn("seccomp", "a2", "/usr/bin/python3", Probe, "serve", a2, "7610");
            await server.WaitForLineAsync(l => l == "LISTENING", Timeout);
            await EchoAsync(cluster, "a1", a2, "blocking");
            var accepted = await server.WaitForLineAsync(l => l.StartsWith("ACCEPTED", StringComparison.Ordinal), Timeout);
            Assert.StartsWith($"ACCEPTED peer={cluster.Vips["a1"]}:", accepted, StringComparison.Ordinal);
            await server.StopAsync();

            // A dual-stack AF_INET6 listener (as iperf3 -s): adopted too; the program sees ::ffff: addresses.
            var dual = cluster.StartProgram("a2", "/usr/bin/python3", Probe, "serve6", "::", "7610");
            await dual.WaitForLineAsync(l => l == "LISTENING", Timeout);
            var (connected, _) = await EchoAsync(cluster, "a1", a2, "nonblocking");
            var port = ConnectedRegex().Match(connected).Groups[2].Value;
            var client = $"::ffff:{cluster.Vips["a1"]}:{port}";
            Assert.Equal($"ACCEPTED peer={client} local=::ffff:{a2}:7610 getpeername={client}", await dual.WaitForLineAsync(l => l.StartsWith("ACCEPTED", StringComparison.Ordinal), Timeout));
            var metrics = await cluster.ScrapeRouterMetricsAsync("a");
            Assert.Equal(2, OverlayCluster.MetricValue(metrics, "isthmus_router_direct_grants_total"));
            Assert.Equal(0, OverlayCluster.MetricValue(metrics, "isthmus_router_relayed_bytes_total"));
            Assert.Equal(0, OverlayCluster.MetricValue(metrics, "isthmus_router_streams_opened_total"));
        });

        await using var off = await OverlayCluster.StartAsync(output, sites: 1, nodesPerSite: 2, clusterSettings: new Dictionary<string, string> { ["direct_lan"] = "false" });
        await off.WithLogsOnFailureAsync(output, async () =>
        {
            var a2 = off.Vips["a2"];
            var server = off.StartProgram("a2", "/usr/bin/python3", Probe, "serve", a2, "7610");
            await server.WaitForLineAsync(l => l == "LISTENING", Timeout);
            await EchoAsync(off, "a1", a2, "nonblocking");
            var metrics = await RelayedAtLeastAsync(off, 2L * Bytes);
            Assert.Equal(0, OverlayCluster.MetricValue(metrics, "isthmus_router_direct_grants_total"));
            Assert.True(OverlayCluster.MetricValue(metrics, "isthmus_router_relayed_bytes_total") >= 2L * Bytes, metrics);
        });
    }

    /// <summary>Runs the echo client on <paramref name="node"/> to <paramref name="vip"/>:7600/7610 and checks that every byte came back.</summary>
    private async Task<(string Connected, string Result)> EchoAsync(OverlayCluster cluster, string node, string vip, string how)
    {
        var port = cluster.Topology.SiteList.Count == 1 ? "7610" : "7600";
        var run = await cluster.RunProgramAsync(node, Timeout, "/usr/bin/python3", Probe, "echo", vip, port, Bytes.ToString(CultureInfo.InvariantCulture), how);
        output.WriteLine($"{node} -> {vip} ({how}): {run}");
        var lines = run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 2, run.ToString());
        var ok = OkRegex().Match(lines[1]);
        Assert.True(ok.Success, lines[1]);
        Assert.Equal(Bytes.ToString(CultureInfo.InvariantCulture), ok.Groups[1].Value);
        Assert.Equal(ok.Groups[2].Value, ok.Groups[3].Value);
        return (lines[0], lines[1]);
    }

    /// <summary>Router a's metrics once its relayed-bytes counter (counted when a stream's relay ends, just after the client saw the end) reaches <paramref name="bytes"/>, or after 10 s.</summary>
    private static async Task<string> RelayedAtLeastAsync(OverlayCluster cluster, long bytes)
    {
        var metrics = await cluster.ScrapeRouterMetricsAsync("a");
        for (var i = 0; i < 50 && OverlayCluster.MetricValue(metrics, "isthmus_router_relayed_bytes_total") < bytes; i++)
        {
            await Task.Delay(200);
            metrics = await cluster.ScrapeRouterMetricsAsync("a");
        }

        return metrics;
    }


    [GeneratedRegex(@"^CONNECTED local=([0-9.]+):(\d+) peer=([0-9.]+:\d+)$")]
    private static partial Regex ConnectedRegex();

    [GeneratedRegex(@"^OK (\d+) ([0-9a-f]{64}) ([0-9a-f]{64})$")]
    private static partial Regex OkRegex();
}
