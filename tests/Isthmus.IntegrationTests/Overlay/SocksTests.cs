using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// Programs that are not interposed (curl here) reach the overlay through the agent's SOCKS5 server, with
/// names resolved by the agent; the far end sees the node's VIP.
/// </summary>
public sealed class SocksTests(OverlayFixture fixture, ITestOutputHelper output) : IClassFixture<OverlayFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly string[] UdpSizes = ["1", "1400", "60000"];
    private OverlayCluster Cluster => fixture.Cluster;

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    [Theory]
    [InlineData("a1", "b1", "b1.b.it")]
    [InlineData("b2", "a2", "a2")]
    [InlineData("a1", "a2", "a2.a.it")]
    public Task CurlSocks5Hostname_FetchesAcrossTheOverlay(string client, string server, string name) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var http = Cluster.StartProgram(server, "python3", Script("http_hello.py"), Cluster.Vips[server], "8088", $"hello from {server}");
            try
            {
                await http.WaitForLineAsync(l => l == "LISTENING", Short);
                // curl itself is not interposed: it talks SOCKS5 to the agent on its own host.
                var result = await Cluster.Host(client).RunAsync("curl", ["-sS", "--max-time", "20", "--socks5-hostname", OverlayCluster.SocksEndpoint, $"http://{name}:8088/"], Short);
                Assert.True(result.ExitCode == 0, result.ToString());
                Assert.Equal($"hello from {server}", result.StandardOutput.TrimEnd());
                await http.WaitForLineAsync(l => l.StartsWith($"CLIENT {Cluster.Vips[client]}:", StringComparison.Ordinal), Short);

                var unknown = await Cluster.Host(client).RunAsync("curl", ["-sS", "--max-time", "20", "--socks5-hostname", OverlayCluster.SocksEndpoint, "http://nosuch:8088/"], Short);
                Assert.Equal(97, unknown.ExitCode); // CURLE_PROXY: the SOCKS server answered "host unreachable"
            }
            finally
            {
                await http.StopAsync();
            }
        });

    [Theory]
    [InlineData("a1", "b1")]
    [InlineData("b1", "b2")]
    public Task UdpAssociate_EchoesThroughTheOverlay_WithTheSendersVip(string client, string server) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var serverVip = Cluster.Vips[server];
            var echo = Cluster.StartProgram(server, "python3", Script("udp_app.py"), "server", serverVip, "9300");
            try
            {
                await echo.WaitForLineAsync(l => l.StartsWith("LISTENING", StringComparison.Ordinal), Short);
                var (host, port) = (OverlayCluster.SocksEndpoint.Split(':')[0], OverlayCluster.SocksEndpoint.Split(':')[1]);
                var result = await Cluster.Host(client).RunAsync("python3", [Script("socks_udp.py"), host, port, server, "9300", .. UdpSizes], Short);
                Assert.True(result.ExitCode == 0, result.ToString());
                foreach (var size in UdpSizes)
                {
                    Assert.Contains($"OK size={size} from={serverVip}:9300", result.StandardOutput, StringComparison.Ordinal);
                }

                await echo.WaitForLineAsync(l => l.StartsWith($"FROM {Cluster.Vips[client]}:", StringComparison.Ordinal), Short);
            }
            finally
            {
                await echo.StopAsync();
            }
        });
}
