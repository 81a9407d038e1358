using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// The agent's side of the shim protocol, spoken directly by a probe (no preload shim): name and address
/// lookups from the router-pushed directory, UDP_ROUTE answers, and datagrams through the proxy images
/// across sites and within a site, arriving with the sender's image address and the bytes unchanged.
/// </summary>
public sealed class AgentProtocolTests(OverlayFixture fixture, ITestOutputHelper output) : IClassFixture<OverlayFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly int[] Sizes = [1, 1400, 9000, 65507];
    private OverlayCluster Cluster => fixture.Cluster;

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    private static string Image(string vip) => "127.100." + string.Join('.', vip.Split('.')[2..]);

    private string Socket(string node) => Path.Combine(Cluster.RuntimeDirectory, node + ".sock");

    private async Task<string> ProbeAsync(string node, params string[] args)
    {
        var result = await Cluster.Host(node).RunAsync("python3", [Script("agent_probe.py"), Socket(node), .. args], Short);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.StandardOutput.Trim();
    }

    [Theory]
    [InlineData("a1", "b1", "b1")]
    [InlineData("a1", "b1.b.it", "b1")]
    [InlineData("a1", "B2.B.IT.", "b2")]
    [InlineData("b2", "a2", "a2")]
    [InlineData("a1", "a1", "a1")]
    public async Task ResolveName_AnswersFromTheDirectory(string asker, string name, string node)
    {
        var site = node[..1];
        Assert.Equal($"ERRNO 0 {Cluster.Vips[node]} {node}.{site}.it", await ProbeAsync(asker, "name", name));
        Assert.Equal($"ERRNO 0 {node}.{site}.it", await ProbeAsync(asker, "addr", Cluster.Vips[node]));
    }

    [Theory]
    [InlineData("nosuch")]
    [InlineData("b1.a.it")]
    [InlineData("b1.b.other")]
    public async Task ResolveName_UnknownNames_AreENOENT(string name) =>
        Assert.StartsWith("ERRNO 2 ", await ProbeAsync("a1", "name", name) + " ", StringComparison.Ordinal);

    [Fact]
    public async Task ResolveCommand_AnswersNamesAndVips_AndFailsForUnknownOnes()
    {
        var byName = await Cluster.IsthmusAsync(Cluster.Host("a1"), Short, "resolve", "b2", "--node", "a1");
        Assert.True(byName.ExitCode == 0, byName.ToString());
        Assert.Equal($"{Cluster.Vips["b2"]} b2.b.it", byName.StandardOutput.Trim());
        var byVip = await Cluster.IsthmusAsync(Cluster.Host("b1"), Short, "resolve", Cluster.Vips["a2"], "--node", "b1");
        Assert.Equal($"{Cluster.Vips["a2"]} a2.a.it", byVip.StandardOutput.Trim());
        var unknown = await Cluster.IsthmusAsync(Cluster.Host("a1"), Short, "resolve", "nosuch", "--node", "a1");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("nosuch: not found in cluster 'it'", unknown.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnvCommand_PrintsTheShimsEnvironment_AsExportLines()
    {
        var result = await Cluster.IsthmusAsync(Cluster.Host("b1"), Short, "env", "--node", "b1");
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.StartsWith("export ", l, StringComparison.Ordinal));
        Assert.Contains($"export ISTHMUS_VIP={Cluster.Vips["b1"]}", lines);
        Assert.Contains("export ISTHMUS_NODE=b1", lines);
        Assert.Contains("export ISTHMUS_CLUSTER=it", lines);
        Assert.Contains(lines, l => l.StartsWith("export LD_PRELOAD=/", StringComparison.Ordinal) && l.Contains("libisthmus_preload.so", StringComparison.Ordinal));
    }

    [Fact]
    public Task NodeThatJoinsLater_ResolvesEverywhere_AsSoonAsItIsUp() =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            // A second agent on b2's host, with a name nobody has used in this cluster yet.
            var name = "late" + Environment.ProcessId % 10000;
            var agent = Cluster.StartIsthmus(Cluster.Host("b2"), "node", Cluster.ClusterDirectory, "--site", "b", "--name", name);
            try
            {
                var up = await agent.WaitForLineAsync(l => l.StartsWith(name + " ", StringComparison.Ordinal), Short, Topology.OutputStream.StandardOutput);
                var vip = up.Split(' ')[1];
                // Its router announces it to site a's router, which pushes it to a1's agent: poll briefly.
                await Topology.Poll.AssertAsync(
                    async () => await ProbeAsync("a1", "name", name) == $"ERRNO 0 {vip} {name}.b.it", TimeSpan.FromSeconds(10), $"a1 resolves {name}");
                Assert.Equal($"ERRNO 0 {name}.b.it", await ProbeAsync("a2", "addr", vip));
            }
            finally
            {
                await agent.StopAsync();
            }
        });

    [Fact]
    public async Task UdpRoute_GivesTheErrnoANetworkWould()
    {
        Assert.Equal("ERRNO 0", await ProbeAsync("a1", "route", Cluster.Vips["b1"], "9000"));
        Assert.Equal("ERRNO 113", await ProbeAsync("a1", "route", "100.64.2.200", "9000")); // EHOSTUNREACH: nobody holds it
        Assert.Equal("ERRNO 101", await ProbeAsync("a1", "route", "100.64.77.1", "9000")); // ENETUNREACH: no site
        Assert.Equal("ERRNO 2", await ProbeAsync("a1", "addr", "100.64.2.200"));
    }

    [Theory]
    [InlineData("a1", "b1")]
    [InlineData("b2", "a1")]
    [InlineData("a1", "a2")]
    public Task Datagrams_TravelThroughTheProxyImages_Unchanged(string client, string server) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var serverVip = Cluster.Vips[server];
            var echo = Cluster.Host(server).Start("python3", Script("udp_echo.py"), Image(serverVip), "9100");
            try
            {
                await echo.WaitForLineAsync(l => l == "LISTENING", Short);
                var clientImage = Image(Cluster.Vips[client]);
                var result = await Cluster.Host(client).RunAsync("python3",
                    [Script("agent_probe.py"), Socket(client), "udp", clientImage, serverVip, "9100", Image(serverVip), .. Sizes.Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture))], Short);
                output.WriteLine(result.ToString());
                Assert.Equal(0, result.ExitCode);
                var local = result.StandardOutput.Split('\n').Single(l => l.StartsWith("LOCAL ", StringComparison.Ordinal))[6..];
                foreach (var size in Sizes)
                {
                    Assert.Contains($"OK size={size} from={Image(serverVip)}:9100", result.StandardOutput, StringComparison.Ordinal);
                    // The server sees the client's image (its VIP once the shim translates), from the client's own port.
                    await echo.WaitForLineAsync(l => l == $"FROM {local} size={size}", Short);
                }
            }
            finally
            {
                await echo.StopAsync();
            }
        });
}
