using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// The C conformance programs for the rest of the socket surface (native/conformance): UDP in every send
/// style, the resolver matrix, the virtual interface in every enumeration API, and io_uring's refusal.
/// Each checks bytes, addresses and error names exactly.
/// </summary>
public sealed class ShimSurfaceTests(OverlayFixture fixture, ITestOutputHelper output) : IClassFixture<OverlayFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly string[] Sizes = ["1", "512", "1472", "9000", "65507"];
    private OverlayCluster Cluster => fixture.Cluster;

    public static TheoryData<string, string, string, string> UdpCases()
    {
        var data = new TheoryData<string, string, string, string>();
        foreach (var (client, server) in new[] { ("a1", "b1"), ("b2", "a1"), ("a1", "a2") })
        {
            data.Add(client, server, "sendto", "vip");
            data.Add(client, server, "connected", "wildcard");
            data.Add(client, server, "msg", "dual-stack");
            data.Add(client, server, "mmsg", "vip");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(UdpCases))]
    public Task Udp_EverySendStyle_EchoesExactBytes_WithVirtualAddresses(string client, string server, string mode, string bind) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var serverVip = Cluster.Vips[server];
            var clientVip = Cluster.Vips[client];
            var bindAddress = bind switch { "vip" => serverVip, "wildcard" => "0.0.0.0", _ => "::" };
            var port = bind switch { "vip" => "7101", "wildcard" => "7102", _ => "7103" };
            var echo = Cluster.StartProgram(server, IsthmusPaths.Native("ist_udp"), "server", bindAddress, port, "0");
            try
            {
                await echo.WaitForLineAsync(l => l.StartsWith("LISTENING ", StringComparison.Ordinal), Timeout, OutputStream.StandardOutput);
                // By canonical name, so the lookup goes through the shim too.
                var result = await Cluster.RunProgramAsync(client, Timeout, IsthmusPaths.Native("ist_udp"), ["client", mode, $"{server}.{server[..1]}.it", port, .. Sizes]);
                output.WriteLine(result.ToString());
                Assert.True(result.ExitCode == 0, result.ToString());
                foreach (var size in Sizes)
                {
                    Assert.Contains($"OK size={size} peer={serverVip}:{port}", result.StandardOutput, StringComparison.Ordinal);
                }

                Assert.Contains("DONE", result.StandardOutput, StringComparison.Ordinal);
                switch (mode)
                {
                    case "connected":
                        Assert.Matches($"CONNECTED local={clientVip}:[0-9]+ peer={serverVip}:{port}", result.StandardOutput);
                        Assert.Contains("DISCONNECTED peer=ERR:ENOTCONN", result.StandardOutput, StringComparison.Ordinal);
                        break;
                    case "msg":
                        // IP_PKTINFO of the reply names this node's VIP, never its loopback image.
                        Assert.Contains($"PKTINFO dst={clientVip}", result.StandardOutput, StringComparison.Ordinal);
                        Assert.DoesNotContain("PKTINFO dst=127.", result.StandardOutput, StringComparison.Ordinal);
                        break;
                }

                foreach (var size in Sizes)
                {
                    await echo.WaitForLineAsync(l => l.StartsWith($"RECV peer={clientVip}:", StringComparison.Ordinal) && l.EndsWith($" bytes={size}", StringComparison.Ordinal), Timeout, OutputStream.StandardOutput);
                }
            }
            finally
            {
                await echo.StopAsync();
            }
        });

    [Theory]
    [InlineData("a1", "b1")]
    [InlineData("b1", "a2")]
    public async Task ResolverMatrix_AnswersOverlayNames_ForwardAndReverseAgreeing(string asker, string node)
    {
        var vip = Cluster.Vips[node];
        var canonical = $"{node}.{node[..1]}.it";
        var result = await Cluster.RunProgramAsync(asker, Timeout, IsthmusPaths.Native("ist_names"), "lookup", canonical, vip);
        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToDictionary(l => string.Join(' ', l.Split(' ')[..2]), l => l);
        Assert.Equal($"GAI null-hints rc=0 canon=- addrs=AF_INET/STREAM/6/{vip}:80,AF_INET/DGRAM/17/{vip}:80,AF_INET/RAW/0/{vip}:80", lines["GAI null-hints"]);
        Assert.Equal($"GAI canonname rc=0 canon={canonical} addrs=AF_INET/STREAM/6/{vip}:80", lines["GAI canonname"]);
        Assert.Equal("GAI inet6 rc=EAI_NODATA", lines["GAI inet6"]);
        Assert.StartsWith($"GAI inet6-v4mapped rc=0 canon=- addrs=AF_INET6/STREAM/6/{vip}:80", lines["GAI inet6-v4mapped"], StringComparison.Ordinal);
        Assert.Equal("GAI numerichost-name rc=EAI_NONAME", lines["GAI numerichost-name"]);
        Assert.Equal("GAI passive-null-node rc=0 canon=- addrs=AF_INET/STREAM/6/0.0.0.0:80", lines["GAI passive-null-node"]);
        foreach (var call in new[] { "gethostbyname", "gethostbyname2-inet", "gethostbyname_r", "gethostbyaddr", "gethostbyaddr_r" })
        {
            Assert.Equal($"HOSTENT {call} name={canonical} aliases=- type=AF_INET len=4 addrs={vip}", lines[$"HOSTENT {call}"]);
        }

        Assert.Equal("HOSTENT gethostbyname2-inet6 herr=NO_DATA", lines["HOSTENT gethostbyname2-inet6"]);
        Assert.Equal("HOSTENT gethostbyname_r-small herr=NETDB_INTERNAL rc=ERANGE", lines["HOSTENT gethostbyname_r-small"]);
        Assert.Equal($"GNI default rc=0 host={canonical} serv=http", lines["GNI default"]);
        Assert.Equal($"GNI namereqd rc=0 host={canonical} serv=http", lines["GNI namereqd"]);
        Assert.Equal($"GNI numerichost rc=0 host={vip} serv=80", lines["GNI numerichost"]);
        Assert.Equal($"GNI nofqdn rc=0 host={node} serv=http", lines["GNI nofqdn"]);
        Assert.Equal("GNI short-buffer rc=EAI_OVERFLOW", lines["GNI short-buffer"]);
    }

    [Fact]
    public async Task Hostname_IsTheHostsOwn_WhenTheClusterDoesNotAskOtherwise()
    {
        var native = await Cluster.Host("a1").RunAsync(IsthmusPaths.Native("ist_names"), ["hostname"], Timeout);
        var interposed = await Cluster.RunProgramAsync("a1", Timeout, IsthmusPaths.Native("ist_names"), "hostname");
        Assert.Equal(0, interposed.ExitCode);
        Assert.Equal(native.StandardOutput, interposed.StandardOutput);
    }

    [Theory]
    [InlineData("a1")]
    [InlineData("b2")]
    public async Task VirtualInterface_AppearsInEveryEnumeration_WithTheVipAndClusterMask(string node)
    {
        var vip = Cluster.Vips[node];
        var result = await Cluster.RunProgramAsync(node, Timeout, IsthmusPaths.Native("ist_ifaces"));
        output.WriteLine(result.ToString());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"IFADDR name=isthmus0 family=AF_INET addr={vip} netmask=255.255.0.0 broadaddr=100.64.255.255 flags=0x1043 index=4242", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"IFCONF name=isthmus0 addr={vip} flags=0x1043 netmask=255.255.0.0 broadaddr=100.64.255.255 index=4242 mtu=65535", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("IFNAMEINDEX index=4242 name=isthmus0 back=isthmus0", result.StandardOutput, StringComparison.Ordinal);
        // The real interfaces are still listed: programs that bind them keep working.
        Assert.Contains("IFADDR name=lo ", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task IoUringSetup_FailsWithENOSYS_SoRuntimesFallBackToSocketCalls()
    {
        var result = await Cluster.RunProgramAsync("a1", Timeout, IsthmusPaths.Native("ist_uring"));
        Assert.Equal("IO_URING errno=ENOSYS", result.StandardOutput.Trim());
        Assert.Equal(0, result.ExitCode);
    }
}
