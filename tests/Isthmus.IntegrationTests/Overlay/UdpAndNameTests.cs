using System.Text.RegularExpressions;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// Unmodified programs using UDP and host names over the overlay: Python sockets (unconnected, connected,
/// dissolved), iperf3 -u, getent, Python's resolver calls; and the errors a normal network gives.
/// </summary>
public sealed partial class UdpAndNameTests(OverlayFixture fixture, ITestOutputHelper output) : IClassFixture<OverlayFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly int[] EchoSizes = [1, 1400, 8192, 65507];
    private OverlayCluster Cluster => fixture.Cluster;

    public static TheoryData<string, string, bool> Pairs => new()
    {
        { "a1", "b1", false },
        { "b2", "a2", true },
        { "a1", "a2", false },
    };

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    private static string Canonical(string node) => $"{node}.{node[..1]}.it";

    [Theory]
    [MemberData(nameof(Pairs))]
    public Task Unconnected_EchoKeepsBytesAndBoundaries_AndBothEndsSeeVips(string client, string server, bool wildcard) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var serverVip = Cluster.Vips[server];
            var echo = Cluster.StartProgram(server, "python3", Script("udp_app.py"), "server", wildcard ? "0.0.0.0" : serverVip, "9200");
            try
            {
                await echo.WaitForLineAsync(l => l.StartsWith("LISTENING", StringComparison.Ordinal), Short);
                // By short name: the shim resolves it through the agent's directory.
                var result = await Cluster.RunProgramAsync(client, Short, "python3", [Script("udp_app.py"), "client", server, "9200", .. EchoSizes.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
                Assert.True(result.ExitCode == 0, result.ToString());
                foreach (var size in EchoSizes)
                {
                    Assert.Contains($"OK size={size} from={serverVip}:9200", result.StandardOutput, StringComparison.Ordinal);
                    await echo.WaitForLineAsync(l => l.StartsWith($"FROM {Cluster.Vips[client]}:", StringComparison.Ordinal) && l.EndsWith($" size={size}", StringComparison.Ordinal), Short);
                }
            }
            finally
            {
                await echo.StopAsync();
            }
        });

    [Theory]
    [MemberData(nameof(Pairs))]
    public Task Connected_SendRecv_GetpeernameIsTheVip_AndAfUnspecDissolves(string client, string server, bool wildcard) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var serverVip = Cluster.Vips[server];
            var echo = Cluster.StartProgram(server, "python3", Script("udp_app.py"), "server", wildcard ? "0.0.0.0" : serverVip, "9201");
            try
            {
                await echo.WaitForLineAsync(l => l.StartsWith("LISTENING", StringComparison.Ordinal), Short);
                var result = await Cluster.RunProgramAsync(client, Short, "python3", Script("udp_app.py"), "connected", Canonical(server), "9201", "1", "65507");
                Assert.True(result.ExitCode == 0, result.ToString());
                Assert.Contains($"PEER {serverVip}:9201", result.StandardOutput, StringComparison.Ordinal);
                Assert.Matches($"LOCAL {Regex.Escape(Cluster.Vips[client])}:[1-9][0-9]*", result.StandardOutput);
                Assert.Contains("OK size=1", result.StandardOutput, StringComparison.Ordinal);
                Assert.Contains("OK size=65507", result.StandardOutput, StringComparison.Ordinal);
                Assert.Contains("DISSOLVED rc=0 errno=ENOTCONN", result.StandardOutput, StringComparison.Ordinal);
            }
            finally
            {
                await echo.StopAsync();
            }
        });

    /// <summary>iperf3 -u in both interposition modes (it uses VIPs only, so the seccomp supervisor can run it too).</summary>
    public static TheoryData<string, string, string, bool> Iperf3UdpCases()
    {
        var data = new TheoryData<string, string, string, bool>();
        foreach (var mode in ConformanceTests.Modes)
        {
            data.Add(mode, "a1", "b1", true);
            data.Add(mode, "b2", "a2", false);
            data.Add(mode, "a1", "a2", false);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Iperf3UdpCases))]
    public Task Iperf3Udp_CompletesAndReportsLoss(string mode, string client, string server, bool bindVip) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var serverVip = Cluster.Vips[server];
            // Bound to its VIP, or iperf3's default: the dual-stack wildcard [::].
            string[] bind = bindVip ? ["-B", serverVip] : [];
            var iperf = Cluster.StartProgramIn(mode, server, "/usr/bin/iperf3", ["-s", "-1", "--forceflush", "-p", "5202", .. bind]);
            await iperf.WaitForLineAsync(l => l.Contains("Server listening", StringComparison.Ordinal), Short);
            var result = await Cluster.RunProgramInAsync(mode, client, TimeSpan.FromSeconds(60), "/usr/bin/iperf3", "-c", serverVip, "-p", "5202", "-u", "-b", "50M", "-l", "1400", "-t", "2", "-J");
            Assert.True(result.ExitCode == 0, result.ToString());
            using var json = System.Text.Json.JsonDocument.Parse(result.StandardOutput);
            var end = json.RootElement.GetProperty("end");
            var sent = end.GetProperty("sum_sent").GetProperty("packets").GetInt64();
            // What the server counted (it sends its figures back at the end): the datagrams really arrived.
            var received = end.GetProperty("sum_received");
            var arrived = received.GetProperty("packets").GetInt64();
            var lost = received.GetProperty("lost_packets").GetInt64();
            output.WriteLine($"{client} -> {server}: {sent} sent, {arrived} counted by the server, {lost} lost ({received.GetProperty("lost_percent").GetDouble():0.###} %), jitter {received.GetProperty("jitter_ms").GetDouble():0.###} ms");
            foreach (var site in Cluster.Topology.SiteList.Select(s => s.Name))
            {
                var metrics = await Cluster.ScrapeRouterMetricsAsync(site);
                output.WriteLine(string.Join(' ', metrics.Split('\n').Where(l => l.StartsWith("isthmus_router_datagrams", StringComparison.Ordinal))));
            }

            Assert.True(sent > 0);
            Assert.True(received.GetProperty("bytes").GetInt64() > 0, "the server received no datagram");
            Assert.InRange(lost, 0, arrived - 1);
            Assert.Equal(0, await iperf.WaitForExitAsync(Short));
            Assert.Contains($"Accepted connection from {Cluster.Vips[client]}", iperf.StandardOutput, StringComparison.Ordinal);
        });

    [Fact]
    public Task WildcardServer_SharesItsPortNumber_WithTheAgentsProxyForARemoteEndpoint() =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            // a1 talks to b1:7150 first, so a1's agent holds a proxy on image(b1):7150; then a server on a1
            // binds the wildcard on port 7150 and must still get b2's datagrams (and b1's replies reach a1).
            var b1 = Cluster.StartProgram("b1", "python3", Script("udp_app.py"), "server", "0.0.0.0", "7150");
            HostProcess? a1 = null;
            try
            {
                await b1.WaitForLineAsync(l => l.StartsWith("LISTENING", StringComparison.Ordinal), Short);
                var first = await Cluster.RunProgramAsync("a1", Short, "python3", Script("udp_app.py"), "client", "b1", "7150", "100");
                Assert.True(first.ExitCode == 0, first.ToString());
                a1 = Cluster.StartProgram("a1", "python3", Script("udp_app.py"), "server", "0.0.0.0", "7150");
                await a1.WaitForLineAsync(l => l.StartsWith("LISTENING", StringComparison.Ordinal), Short);
                var toA1 = await Cluster.RunProgramAsync("b2", Short, "python3", Script("udp_app.py"), "client", "a1", "7150", "200");
                Assert.True(toA1.ExitCode == 0, toA1.ToString());
                Assert.Contains($"OK size=200 from={Cluster.Vips["a1"]}:7150", toA1.StandardOutput, StringComparison.Ordinal);
                var again = await Cluster.RunProgramAsync("a1", Short, "python3", Script("udp_app.py"), "client", "b1", "7150", "300");
                Assert.Contains($"OK size=300 from={Cluster.Vips["b1"]}:7150", again.StandardOutput, StringComparison.Ordinal);
            }
            finally
            {
                await b1.StopAsync();
                if (a1 is not null)
                {
                    await a1.StopAsync();
                }
            }
        });

    [Theory]
    [InlineData("a1", "b1", "0.0.0.0")]
    [InlineData("b2", "a2", "::")]
    [InlineData("a1", "a2", "::")]
    public Task WildcardServer_ThatConnectsToItsClient_KeepsGettingItsDatagrams(string client, string server, string wildcard) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            // The kernel gives such a socket 127.0.0.1 as its local address; the agent must deliver there.
            var echo = Cluster.StartProgram(server, "python3", Script("udp_app.py"), "connecting-server", wildcard, "7160");
            try
            {
                await echo.WaitForLineAsync(l => l == "LISTENING", Short);
                var result = await Cluster.RunProgramAsync(client, Short, "python3", [Script("udp_app.py"), "client", server, "7160", .. EchoSizes.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
                Assert.True(result.ExitCode == 0, result.ToString());
                var clientVip = Regex.Escape(Cluster.Vips[client]);
                var mapped = wildcard == "::" ? "::ffff:" : "";
                await echo.WaitForLineAsync(l => Regex.IsMatch(l, $"^CONNECTED local={Regex.Escape(mapped + Cluster.Vips[server])}:7160 peer={Regex.Escape(mapped)}{clientVip}:[0-9]+$"), Short);
            }
            finally
            {
                await echo.StopAsync();
            }
        });

    [Fact]
    public async Task Datagrams_ToNobodyOrTooBig_FailAsOnANormalNetwork()
    {
        var unassigned = await Cluster.RunProgramAsync("a1", Short, "python3", Script("udp_app.py"), "sendto", "100.64.2.200", "9000", "10");
        Assert.Equal("ERROR errno=EHOSTUNREACH", unassigned.StandardOutput.Trim());
        var noSite = await Cluster.RunProgramAsync("a1", Short, "python3", Script("udp_app.py"), "sendto", "100.64.200.1", "9000", "10");
        Assert.Equal("ERROR errno=ENETUNREACH", noSite.StandardOutput.Trim());
        var oversized = await Cluster.RunProgramAsync("a1", Short, "python3", Script("udp_app.py"), "sendto", Cluster.Vips["b1"], "9000", "65508");
        Assert.Equal("ERROR errno=EMSGSIZE", oversized.StandardOutput.Trim());
        var fits = await Cluster.RunProgramAsync("a1", Short, "python3", Script("udp_app.py"), "sendto", Cluster.Vips["b1"], "9000", "65507");
        Assert.Equal("SENT 65507", fits.StandardOutput.Trim());
    }

    [Theory]
    [InlineData("a1", "b1.b.it", "b1")]
    [InlineData("a1", "b2", "b2")]
    [InlineData("b1", "a2.a.it", "a2")]
    public async Task Getent_ResolvesCanonicalAndShortNames(string asker, string name, string node)
    {
        var result = await Cluster.RunProgramAsync(asker, Short, "getent", "hosts", name);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches($"^{Regex.Escape(Cluster.Vips[node])}\\s+{Regex.Escape(Canonical(node))}(\\s|$)", result.StandardOutput.Trim());
        var reverse = await Cluster.RunProgramAsync(asker, Short, "getent", "hosts", Cluster.Vips[node]);
        Assert.Matches($"^{Regex.Escape(Cluster.Vips[node])}\\s+{Regex.Escape(Canonical(node))}(\\s|$)", reverse.StandardOutput.Trim());
    }

    [Fact]
    public async Task Python_ForwardAndReverseAgree_AndUnknownNamesAreNotFound()
    {
        const string Code = """
            import socket, sys
            vip = sys.argv[1]
            name, aliases, addrs = socket.gethostbyaddr(vip)
            print("REVERSE", name, addrs)
            print("FORWARD", socket.gethostbyname(name))
            print("GAI", sorted({a[4][0] for a in socket.getaddrinfo(name.split(".")[0], 22)}))
            print("NAMEINFO", socket.getnameinfo((vip, 22), 0))
            for bad in ("nosuch", "nosuch.b.it"):
                try:
                    socket.getaddrinfo(bad, 22)
                    print("FOUND", bad)
                except socket.gaierror as e:
                    print("GAIERROR", bad, e.errno)
            try:
                socket.gethostbyaddr("100.64.2.200")
            except socket.herror as e:
                print("HERROR", e.errno)
            print("UNNAMED", socket.getnameinfo(("100.64.2.200", 22), socket.NI_NUMERICSERV))
            """;
        var vip = Cluster.Vips["b2"];
        var result = await Cluster.RunProgramAsync("a2", Short, "python3", "-c", Code, vip);
        output.WriteLine(result.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());
        // A single-label name the cluster does not know is the real resolver's to answer: the same error as
        // without Isthmus on this host. A name in the cluster's domain is the agent's: "no such name" (-2).
        const string Unknown = """
            import socket
            try:
                socket.getaddrinfo("nosuch", 22)
                print("FOUND nosuch")
            except socket.gaierror as e:
                print("GAIERROR nosuch", e.errno)
            """;
        var native = await Cluster.Host("a2").RunAsync("python3", ["-c", Unknown], Short);
        var nativeError = native.StandardOutput.Split('\n').Single(l => l.StartsWith("GAIERROR nosuch ", StringComparison.Ordinal));
        Assert.Contains($"REVERSE b2.b.it ['{vip}']", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"FORWARD {vip}", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"GAI ['{vip}']", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("NAMEINFO ('b2.b.it', 'ssh')", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(nativeError, result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("GAIERROR nosuch.b.it -2", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("HERROR 1", result.StandardOutput, StringComparison.Ordinal); // HOST_NOT_FOUND
        Assert.Contains("UNNAMED ('100.64.2.200', '22')", result.StandardOutput, StringComparison.Ordinal);
        var getent = await Cluster.RunProgramAsync("a2", Short, "getent", "hosts", "nosuch.b.it");
        Assert.Equal(2, getent.ExitCode); // getent: key not found
    }
}
