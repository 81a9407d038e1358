using Isthmus.Bench.Report;
using Isthmus.IntegrationTests.Overlay;
using Xunit;
using Xunit.Abstractions;
using TestShell = Isthmus.IntegrationTests.Topology.Shell;

namespace Isthmus.IntegrationTests.Bench;

/// <summary>
/// <c>isthmus bench</c> end to end, tiny: one round of 1-second runs over the native cases, the three Isthmus
/// cases and two peers that CI installs (socat, ssh -L), every tool. Asserts that every case has every figure,
/// each one positive, with ratios to native, relay CPU per GiB, and no failure; and that the topology is gone
/// afterwards. No timing threshold: the figures only have to exist.
/// </summary>
public sealed class BenchCommandTests(ITestOutputHelper output)
{
    private static readonly string[] Cases = ["native-gw", "native-flat", "isthmus-intra", "isthmus-inter", "isthmus-clear", "socat", "ssh-aes"];

    private static readonly string[] Metrics = ["iperf3 def", "netpipe rtt<=64B", "netpipe peak", "connect rate", "connect first-byte"];

    [Fact]
    public async Task QuickBench_ReportsEveryCaseWithPositiveFiguresAndRatios_AndLeavesNothingBehind()
    {
        var dir = Directory.CreateTempSubdirectory("isthmus-bench-test-").FullName;
        try
        {
            var json = Path.Combine(dir, "bench.json");
            var plots = Path.Combine(dir, "plots");
            var result = await TestShell.RunAsync(IsthmusPaths.Isthmus,
                ["bench", "--quick", "--duration", "1", "--sizes", "def", "--cases", string.Join(',', Cases), "--tools", "iperf3,netpipe,connect", "--json", json, "--plots", plots],
                TimeSpan.FromMinutes(4));
            output.WriteLine(result.StandardOutput);
            output.WriteLine(result.StandardError);
            Assert.Equal(0, result.ExitCode);

            var report = ReportJson.Read(json);
            Assert.Empty(report.Errors);
            Assert.False(string.IsNullOrEmpty(report.Environment.Kernel));
            Assert.True(report.Environment.Cores > 0);
            Assert.Equal(Cases, report.Cases.Select(c => c.Case));
            foreach (var c in report.Cases)
            {
                foreach (var metric in Metrics)
                {
                    var m = c.Metrics.SingleOrDefault(x => x.Metric == metric);
                    Assert.True(m is not null, $"{c.Case} has no '{metric}'");
                    Assert.True(m.Median > 0 && double.IsFinite(m.Median), $"{c.Case} {metric} = {m.Median}");
                    Assert.True(m.Min <= m.Median && m.Median <= m.Max, $"{c.Case} {metric}: min {m.Min} median {m.Median} max {m.Max}");
                    if (c.Reference is null)
                    {
                        Assert.Null(m.Ratio);
                    }
                    else
                    {
                        Assert.True(m.Ratio > 0, $"{c.Case} {metric} has no ratio to {c.Reference}");
                    }
                }

                var throughput = c.Metrics.Single(x => x.Metric == "iperf3 def");
                if (c.Reference is null)
                {
                    Assert.Null(throughput.RelayCpuPerGiB);
                }
                else
                {
                    // Every relayed byte costs some CPU in the relay processes: 0 would mean the wrong PIDs were metered.
                    Assert.True(throughput.RelayCpuPerGiB > 0, $"{c.Case}: relay CPU per GiB {throughput.RelayCpuPerGiB}");
                }
            }

            Assert.Equal("isthmus-intra", report.Cases.Single(c => c.Case == "isthmus-intra").Case);
            Assert.Equal("native-flat", report.Cases.Single(c => c.Case == "isthmus-intra").Reference);
            Assert.Equal("native-gw", report.Cases.Single(c => c.Case == "isthmus-inter").Reference);
            Assert.Contains("iperf3 throughput by write size", result.StandardOutput, StringComparison.Ordinal);
            foreach (var png in new[] { "iperf3-by-write-size.png", "netpipe-bandwidth.png", "ratios.png" })
            {
                var bytes = await File.ReadAllBytesAsync(Path.Combine(plots, png));
                Assert.True(bytes.Length > 1000 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G', $"{png} is not a PNG");
            }

            var namespaces = await TestShell.RunAsync("ip", ["netns", "list"]);
            Assert.DoesNotContain(report.Run.TopologyPrefix + "-", namespaces.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>memcached (memcaslap get and set) on its own, natively and through socat: no cluster, so it stays short.</summary>
    [Fact]
    public async Task QuickMemcached_ReportsGetAndSetRates()
    {
        var json = Path.Combine(Directory.CreateTempSubdirectory("isthmus-bench-test-").FullName, "bench.json");
        try
        {
            var result = await TestShell.RunAsync(IsthmusPaths.Isthmus,
                ["bench", "--quick", "--duration", "1", "--cases", "native-gw,socat", "--tools", "memcached", "--json", json], TimeSpan.FromMinutes(2));
            output.WriteLine(result.StandardError);
            Assert.Equal(0, result.ExitCode);
            var report = ReportJson.Read(json);
            Assert.Empty(report.Errors);
            foreach (var metric in new[] { "memcached get 1k", "memcached set 1k" })
            {
                Assert.True(report.Cases.Single(c => c.Case == "native-gw").Metrics.Single(m => m.Metric == metric).Median > 0);
                var socat = report.Cases.Single(c => c.Case == "socat").Metrics.Single(m => m.Metric == metric);
                Assert.True(socat.Median > 0 && socat.Ratio > 0, $"socat {metric}: {socat.Median} ({socat.Ratio})");
            }
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(json)!, recursive: true);
        }
    }

    /// <summary>
    /// The idle tool through Isthmus and ssh -L (both hold connections in long-lived relay processes), with iperf3 in
    /// two parallel flows and the connect tool sequential and with two parallel loops alongside (both figures for every case): every connection opened and echoed (else the tool reports an error), relay
    /// memory and bytes per connection positive, the routers' RSS for Isthmus only; socat and the natives have no
    /// idle figures (a process per connection; no relay).
    /// </summary>
    [Fact]
    public async Task IdleConnections_ReportRelayMemoryPerConnection_AndParallelFlowsAndConnectLoopsAreSummed()
    {
        var json = Path.Combine(Directory.CreateTempSubdirectory("isthmus-bench-test-").FullName, "bench.json");
        try
        {
            var result = await TestShell.RunAsync(IsthmusPaths.Isthmus,
                ["bench", "--quick", "--duration", "1", "--sizes", "def", "--parallel", "2", "--idle-connections", "100", "--cases", "native-gw,isthmus-inter,socat,ssh-aes",
                    "--tools", "iperf3,idle,connect", "--json", json], TimeSpan.FromMinutes(4));
            output.WriteLine(result.StandardError);
            Assert.Equal(0, result.ExitCode);
            var report = ReportJson.Read(json);
            Assert.Empty(report.Errors);
            Assert.Equal(100, report.Run.IdleConnections);
            Assert.Equal(2, report.Run.Iperf3Flows);
            Assert.Contains("2 parallel flows summed", result.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("100 idle connections held open", result.StandardOutput, StringComparison.Ordinal);
            double Figure(string c, string metric) => report.Cases.Single(x => x.Case == c).Metrics.SingleOrDefault(m => m.Metric == metric)?.Median ?? double.NaN;
            foreach (var c in new[] { "isthmus-inter", "ssh-aes" })
            {
                Assert.True(Figure(c, "idle relay memory") > 0, $"{c}: relay memory {Figure(c, "idle relay memory")}");
                Assert.True(Figure(c, "idle bytes/conn") > 0, $"{c}: bytes per connection {Figure(c, "idle bytes/conn")}");
                Assert.True(Figure(c, "iperf3 def") > 0, $"{c}: iperf3 {Figure(c, "iperf3 def")}");
            }

            Assert.Contains("parallel: 2 loops, rates summed", result.StandardOutput, StringComparison.Ordinal);
            foreach (var c in new[] { "native-gw", "isthmus-inter", "socat", "ssh-aes" })
            {
                foreach (var metric in new[] { "connect rate", "connect first-byte", "connect rate parallel", "connect first-byte parallel" })
                {
                    Assert.True(Figure(c, metric) > 0, $"{c}: {metric} {Figure(c, metric)}");
                }
            }

            Assert.True(Figure("isthmus-inter", "idle router RSS") > 10, $"router RSS {Figure("isthmus-inter", "idle router RSS")} MiB");
            Assert.True(double.IsNaN(Figure("ssh-aes", "idle router RSS")));
            Assert.True(double.IsNaN(Figure("socat", "idle relay memory")));
            Assert.True(double.IsNaN(Figure("native-gw", "idle relay memory")));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(json)!, recursive: true);
        }
    }

    [Fact]
    public async Task BadArguments_ExitTwo_WithOneLine()
    {
        foreach (var args in new[] { new[] { "bench", "--cases", "nosuch" }, ["bench", "--wan-rate", "fast"], ["bench", "--rounds", "0"], ["bench", "--sizes", "huge"], ["bench", "--parallel", "0"], ["bench", "--idle-connections", "0"] })
        {
            var r = await TestShell.RunAsync(IsthmusPaths.Isthmus, args);
            Assert.Equal(2, r.ExitCode);
            Assert.Single(r.StandardError.Trim().Split('\n'));
        }

        // A delay the routers' WAN emulator could not take is refused before anything is built.
        var delay = await TestShell.RunAsync(IsthmusPaths.Isthmus, ["bench", "--wan-delay", "fast"]);
        Assert.Equal(2, delay.ExitCode);
        Assert.Contains("--wan-delay: 'fast' is not a delay", delay.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutRoot_ExitsTwo_AndSaysSo()
    {
        var r = await TestShell.RunAsync("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", IsthmusPaths.Isthmus, "bench", "--quick"]);
        output.WriteLine(r.StandardError);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("needs root", r.StandardError, StringComparison.Ordinal);
    }
}
