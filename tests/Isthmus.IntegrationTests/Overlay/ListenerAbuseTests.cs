using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// The hardening acceptance test: while a known-checksum stream runs from a1 to b1 through router a, router a's
/// LAN and WAN ports get 10,000 malformed frames and 2,000 half-open connections (plus slow-loris senders).
/// The stream must arrive byte for byte, new legitimate connections must work during the flood, router a's
/// memory must stay bounded, and every offender must be closed (and logged, rate-limited).
/// </summary>
public sealed partial class ListenerAbuseTests(ITestOutputHelper output)
{
    private const int FramesPerPort = 5000;
    private const int HalfOpenPerPort = 1000;
    private const long MinTransfer = 256L << 20;
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan FloodLimit = TimeSpan.FromMinutes(5);

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    [Fact]
    public async Task Router_survives_malformed_frames_and_half_open_floods_while_a_transfer_runs()
    {
        await using var cluster = await OverlayCluster.StartAsync(output, sites: 2, nodesPerSite: 2);
        await cluster.WithLogsOnFailureAsync(output, () => FloodAsync(cluster));
    }

    private async Task FloodAsync(OverlayCluster cluster)
    {
        var router = cluster.Routers["a"];
        var gatewayA = cluster.Site("a").Gateway;
        var a1 = cluster.Vips["a1"];
        var b1 = cluster.Vips["b1"];
        var stop = Path.Combine(cluster.WorkDirectory, "stop-transfer");

        var sink = cluster.StartProgram("b1", "/usr/bin/python3", Script("stream_transfer.py"), "sink", b1, "5600");
        var echoB = cluster.StartProgram("b1", "/usr/bin/python3", Script("stream_transfer.py"), "echo", b1, "5601");
        var echoA = cluster.StartProgram("a1", "/usr/bin/python3", Script("stream_transfer.py"), "echo", a1, "5602");
        foreach (var server in new[] { sink, echoB, echoA })
        {
            await server.WaitForLineAsync(l => l == "LISTENING", Short);
        }

        await PingAsync(cluster, "a1", b1, "5601", "before");
        var before = Memory(router.Id);
        var source = cluster.StartProgram("a1", "/usr/bin/python3", Script("stream_transfer.py"), "source", b1, "5600",
            MinTransfer.ToString(CultureInfo.InvariantCulture), stop, "40");

        // LAN port from a node of site a (with bogus control frames inside TLS); WAN port from site b's gateway.
        (long Rss, long Hwm) during;
        var floodClock = System.Diagnostics.Stopwatch.StartNew();
        var lanFlood = cluster.Host("a2").Start("/usr/bin/python3", Script("listener_flood.py"), gatewayA.Address, OverlayCluster.LanPort.ToString(CultureInfo.InvariantCulture),
            "--frames", $"{FramesPerPort}", "--half-open", $"{HalfOpenPerPort}", "--control", "--seed", "1");
        var wanFlood = cluster.Site("b").Gateway.Start("/usr/bin/python3", Script("listener_flood.py"), gatewayA.WanAddress, OverlayCluster.RouterPort.ToString(CultureInfo.InvariantCulture),
            "--frames", $"{FramesPerPort}", "--half-open", $"{HalfOpenPerPort}", "--seed", "2");
        try
        {
            await lanFlood.WaitForLineAsync(ReadyRegex(), Short, OutputStream.StandardOutput);
            await wanFlood.WaitForLineAsync(ReadyRegex(), Short, OutputStream.StandardOutput);

            // New legitimate streams through both abused ports while 2,000 half-open connections are held.
            await PingAsync(cluster, "a1", b1, "5601", "lan-during-flood");
            await PingAsync(cluster, "b1", a1, "5602", "wan-during-flood");
            during = Memory(router.Id);

            Assert.Equal(0, await lanFlood.WaitForExitAsync(FloodLimit));
            Assert.Equal(0, await wanFlood.WaitForExitAsync(FloodLimit));
        }
        finally
        {
            await lanFlood.StopAsync();
            await wanFlood.StopAsync();
        }

        floodClock.Stop();
        var lan = Report(lanFlood, "LAN");
        var wan = Report(wanFlood, "WAN");
        var after = Memory(router.Id);

        await File.WriteAllTextAsync(stop, "");
        Assert.Equal(0, await source.WaitForExitAsync(FloodLimit));
        Assert.Equal(0, await sink.WaitForExitAsync(Short));
        var sent = source.StandardOutputLines.Single(l => l.StartsWith("SENT ", StringComparison.Ordinal)).Split(' ');
        var received = sink.StandardOutputLines.Single(l => l.StartsWith("RECEIVED ", StringComparison.Ordinal)).Split(' ');
        output.WriteLine($"transfer a1 -> b1: sent {sent[1]} B sha256 {sent[2]}, received {received[1]} B sha256 {received[2]}");
        Assert.True(long.Parse(sent[1], CultureInfo.InvariantCulture) >= MinTransfer);
        Assert.Equal(sent[1], received[1]);
        Assert.Equal(sent[2], received[2]);

        // Still responsive afterwards, through both ports.
        Assert.False(router.HasExited);
        await PingAsync(cluster, "a1", b1, "5601", "after");
        await PingAsync(cluster, "b1", a1, "5602", "after");

        output.WriteLine($"router a VmRSS: before {before.Rss / 1024} MiB, during {during.Rss / 1024} MiB, after {after.Rss / 1024} MiB; VmHWM {after.Hwm / 1024} MiB");
        // 2,000 half-open connections and 10,000 offenders must cost a bounded amount: the handshake guard holds
        // at most 512 per listener. A router that kept state per offender would grow by far more.
        Assert.InRange(after.Hwm - before.Rss, long.MinValue, 256 * 1024);

        // Every offender was closed by the router, none hung.
        foreach (var (name, report) in new[] { ("LAN", lan), ("WAN", wan) })
        {
            Assert.Equal(FramesPerPort, report.GetProperty("frames").GetInt32());
            Assert.Equal(HalfOpenPerPort, report.GetProperty("half_open_opened").GetInt32());
            Assert.Equal(HalfOpenPerPort, report.GetProperty("half_open_closed_by_router").GetInt32());
            foreach (var kind in report.GetProperty("outcomes").EnumerateObject())
            {
                Assert.False(kind.Value.TryGetProperty("hung", out _), $"{name}: the router kept a '{kind.Name}' offender open: {kind.Value}");
            }

            foreach (var slow in report.GetProperty("slow_loris").EnumerateArray())
            {
                Assert.Equal("closed", slow.GetProperty("outcome").GetString());
            }
        }

        // Counted, and logged without flooding the log.
        var metrics = await cluster.ScrapeRouterMetricsAsync("a");
        Assert.True(Counter(metrics, "isthmus_router_legs_refused_total") > 1000, metrics);
        Assert.True(Counter(metrics, "isthmus_router_handshakes_failed_total") > 1000, metrics);
        Assert.True(Counter(metrics, "isthmus_router_handshakes_evicted_total") + Counter(metrics, "isthmus_router_handshakes_timed_out_total") >= 2 * HalfOpenPerPort, metrics);
        var log = router.StandardErrorLines;
        foreach (var expected in new[] { "Dropped leg from", "TLS handshake failed", "Node control channel from", "similar lines suppressed" })
        {
            Assert.Contains(log, l => l.Contains(expected, StringComparison.Ordinal));
        }

        // Three components log offenders (router, relay, control), each at most 20 lines a second plus one
        // "suppressed" line; a log that kept a line per offender would have 12,000.
        var warnings = log.Count(l => l.Contains("warn:", StringComparison.Ordinal));
        var allowed = (3 * 21 * ((int)floodClock.Elapsed.TotalSeconds + 2)) + 100;
        output.WriteLine($"router a: {warnings} warning lines for {2 * (FramesPerPort + HalfOpenPerPort)} offenders in {floodClock.Elapsed.TotalSeconds:0} s (at most {allowed})");
        Assert.True(warnings <= allowed && warnings < 2 * (FramesPerPort + HalfOpenPerPort), $"{warnings} warning lines: the offender log is not rate-limited");
    }

    private async Task PingAsync(OverlayCluster cluster, string from, string vip, string port, string text)
    {
        var result = await cluster.RunProgramAsync(from, Short, "/usr/bin/python3", Script("stream_transfer.py"), "ping", vip, port, text);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(text, result.StandardOutput.Trim());
        output.WriteLine($"{from} -> {vip}:{port} '{text}' echoed");
    }

    private JsonElement Report(HostProcess flood, string name)
    {
        var line = flood.StandardOutputLines.Last(l => l.StartsWith('{'));
        output.WriteLine($"{name} flood: {line}");
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    /// <summary>VmRSS and VmHWM of a process, in KiB.</summary>
    private static (long Rss, long Hwm) Memory(int pid)
    {
        var status = File.ReadAllLines($"/proc/{pid}/status");
        long Field(string name) => long.Parse(status.Single(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        return (Field("VmRSS"), Field("VmHWM"));
    }

    private static long Counter(string metrics, string name)
    {
        var line = metrics.Split('\n').First(l => l.StartsWith(name + "{", StringComparison.Ordinal));
        return long.Parse(line.Split(' ')[^1], CultureInfo.InvariantCulture);
    }

    [GeneratedRegex("^READY ")]
    private static partial Regex ReadyRegex();
}
