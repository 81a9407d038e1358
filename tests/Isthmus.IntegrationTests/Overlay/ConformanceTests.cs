using System.Text.RegularExpressions;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// The C conformance programs (native/conformance) across the overlay: every server shape (fork per
/// connection, epoll + accept4 flags, inetd-style exec) against every connect style (blocking,
/// non-blocking + poll + SO_ERROR, epoll edge-triggered, v4-mapped IPv6), with byte-exact echo and exact
/// virtual addresses on both sides. Every test runs in both interposition modes: the preload shim and the
/// seccomp supervisor must behave the same.
/// </summary>
public sealed partial class ConformanceTests(OverlayFixture fixture, ITestOutputHelper output) : IClassFixture<OverlayFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private OverlayCluster Cluster => fixture.Cluster;

    /// <summary>The interposition modes every conformance test runs in.</summary>
    public static readonly string[] Modes = ["preload", "seccomp"];

    private static readonly int[] UdpSizes = [1, 1400, 65507];

    public static TheoryData<string, string, string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string, string, string>();
        foreach (var mode in Modes)
        {
            foreach (var (client, server) in new[] { ("a1", "b1"), ("b1", "a1"), ("a1", "a2") })
            {
                data.Add(mode, client, server, "fork", "vip");
                data.Add(mode, client, server, "epoll", "wildcard");
                data.Add(mode, client, server, "exec", "dual-stack");
            }
        }

        return data;
    }

    public static TheoryData<string> ModeCases() => [.. Modes];

    public static TheoryData<string, string, string> ProbeCases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var mode in Modes)
        {
            data.Add(mode, "a1", "b1");
            data.Add(mode, "b2", "a2");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public Task EveryConnectStyle_EchoesExactBytes_WithVirtualAddresses(string mode, string client, string server, string serverMode, string bind) =>
        Cluster.WithLogsOnFailureAsync(output, () => EchoAllStylesAsync(mode, client, server, serverMode, bind));

    private async Task EchoAllStylesAsync(string interpose, string client, string server, string serverMode, string bind)
    {
        var serverVip = Cluster.Vips[server];
        var clientVip = Cluster.Vips[client];
        var bindAddress = bind switch { "vip" => serverVip, "wildcard" => "0.0.0.0", _ => "::" };
        var port = bind switch { "vip" => "7001", "wildcard" => "7002", _ => "7003" };
        var echo = Cluster.StartProgramIn(interpose, server, IsthmusPaths.Native("ist_server"), serverMode, bindAddress, port, "0");
        try
        {
            await echo.WaitForLineAsync(l => l.StartsWith("LISTENING ", StringComparison.Ordinal), Timeout, OutputStream.StandardOutput);
            var cases = new (string Mode, long Bytes)[] { ("block", 1), ("block", 8 << 20), ("nonblock", 65536), ("epollet", 1 << 20), ("mapped", 100_000) };
            foreach (var (mode, bytes) in cases)
            {
                var result = await Cluster.RunProgramInAsync(interpose, client, Timeout, IsthmusPaths.Native("ist_client"), mode, serverVip, port, bytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
                output.WriteLine($"[{interpose}] {client} -> {server} ({serverMode}, {bind}) {mode} {bytes} B: exit {result.ExitCode}: {result.StandardOutput.Replace('\n', ' ')}");
                Assert.True(result.ExitCode == 0, result.ToString());
                var connected = Connected().Match(result.StandardOutput);
                Assert.True(connected.Success, result.ToString());
                Assert.Equal(clientVip, connected.Groups["lip"].Value);
                Assert.Equal(serverVip, connected.Groups["pip"].Value);
                Assert.Equal(port, connected.Groups["pport"].Value);
                Assert.Contains($"OK bytes={bytes}", result.StandardOutput, StringComparison.Ordinal);

                // The server saw the client's VIP and the very port the client's socket has.
                var clientPort = connected.Groups["lport"].Value;
                await echo.WaitForLineAsync(l => l.StartsWith($"ACCEPT peer={clientVip}:{clientPort} local={serverVip}:{port}", StringComparison.Ordinal), Timeout);
            }

            if (serverMode == "exec")
            {
                // inetd style: the exec'd child, still interposed, sees the virtual peer on fd 0.
                await echo.WaitForLineAsync(l => l.StartsWith($"CHILD peer={clientVip}:", StringComparison.Ordinal), Timeout);
            }

            Assert.DoesNotContain(echo.StandardOutputLines, l => l.StartsWith("ERROR", StringComparison.Ordinal) || l.StartsWith("IO_ERROR", StringComparison.Ordinal));
        }
        finally
        {
            await echo.StopAsync();
        }
    }

    [Theory]
    [MemberData(nameof(ProbeCases))]
    public async Task Probe_BindGetsocknameAcceptCloseRange(string mode, string node, string other)
    {
        var result = await Cluster.RunProgramInAsync(mode, node, Timeout, IsthmusPaths.Native("ist_probe"), Cluster.Vips[node], Cluster.Vips[other], "7100");
        output.WriteLine(result.StandardOutput);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain("FAIL", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("PASS", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(ModeCases))]
    public async Task TwoNodesOnOneHost_CanListenOnTheSamePort(string mode)
    {
        // b2's agent runs in b1's namespace too (a second virtual node on the same real host).
        var host = Cluster.Host("b1");
        var agent = Cluster.StartIsthmus(host, "node", Cluster.ClusterDirectory, "--site", "b", "--name", "bx");
        try
        {
            var line = await agent.WaitForLineAsync(l => l.StartsWith("bx ", StringComparison.Ordinal), Timeout, OutputStream.StandardOutput);
            var bxVip = line.Split(' ')[1];
            var b1 = Cluster.StartProgramIn(mode, "b1", IsthmusPaths.Native("ist_server"), "fork", Cluster.Vips["b1"], "7200", "0");
            var bx = Cluster.StartIsthmus(host, "run", "--node", "bx", "--mode", mode, "--", IsthmusPaths.Native("ist_server"), "fork", bxVip, "7200", "0");
            try
            {
                await b1.WaitForLineAsync(l => l == $"LISTENING {Cluster.Vips["b1"]}:7200", Timeout);
                await bx.WaitForLineAsync(l => l == $"LISTENING {bxVip}:7200", Timeout);
                foreach (var (target, server) in new[] { (Cluster.Vips["b1"], b1), (bxVip, bx) })
                {
                    var result = await Cluster.RunProgramInAsync(mode, "a1", Timeout, IsthmusPaths.Native("ist_client"), "block", target, "7200", "5000");
                    Assert.True(result.ExitCode == 0, result.ToString());
                    await server.WaitForLineAsync(l => l.StartsWith($"ACCEPT peer={Cluster.Vips["a1"]}:", StringComparison.Ordinal) && l.EndsWith($"local={target}:7200", StringComparison.Ordinal), Timeout);
                }
            }
            finally
            {
                await b1.StopAsync();
                await bx.StopAsync();
            }
        }
        finally
        {
            await agent.StopAsync();
        }
    }

    [Theory]
    [MemberData(nameof(ModeCases))]
    public async Task NonVirtualAddresses_BehaveExactlyAsWithoutIsthmus(string mode)
    {
        // A plain server on site a's gateway, reached by its real address from an interposed program on a1.
        var gateway = Cluster.Site("a").Gateway;
        var native = gateway.Start(IsthmusPaths.Native("ist_server"), "fork", gateway.Address, "7500", "0");
        try
        {
            await native.WaitForLineAsync(l => l.StartsWith("LISTENING", StringComparison.Ordinal), Timeout);
            var real = await Cluster.RunProgramInAsync(mode, "a1", Timeout, IsthmusPaths.Native("ist_client"), "nonblock", gateway.Address, "7500", "70000");
            Assert.True(real.ExitCode == 0, real.ToString());
            Assert.Contains($"CONNECTED local={Cluster.Host("a1").Address}:", real.StandardOutput, StringComparison.Ordinal);
            Assert.Contains($"peer={gateway.Address}:7500", real.StandardOutput, StringComparison.Ordinal);
            await native.WaitForLineAsync(l => l.StartsWith($"ACCEPT peer={Cluster.Host("a1").Address}:", StringComparison.Ordinal), Timeout);

            // The other site's real address has no route from a compute node, with or without Isthmus.
            var unrouted = await Cluster.RunProgramInAsync(mode, "a1", Timeout, IsthmusPaths.Native("ist_client"), "block", Cluster.Host("b1").Address, "7500", "1");
            Assert.Contains("CONNECT_ERROR errno=ENETUNREACH", unrouted.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            await native.StopAsync();
        }
    }

    public static TheoryData<string, string, string, string, string> UdpCases()
    {
        var data = new TheoryData<string, string, string, string, string>();
        foreach (var mode in (string[])[.. Modes, "seccomp-msg"])
        {
            // The seccomp supervisor stops sendmsg/recvmsg (ist_udp msg, mmsg) only with --seccomp-msg.
            foreach (var clientMode in mode == "seccomp" ? ["sendto", "connected"] : new[] { "sendto", "connected", "msg", "mmsg" })
            {
                data.Add(mode, "a1", "b1", clientMode, "vip");
                data.Add(mode, "b2", "a2", clientMode, "wildcard");
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(UdpCases))]
    public Task Udp_EchoByVip_BothEndsSeeVips(string mode, string client, string server, string clientMode, string bind) =>
        Cluster.WithLogsOnFailureAsync(output, async () =>
        {
            var (serverVip, clientVip) = (Cluster.Vips[server], Cluster.Vips[client]);
            var port = bind == "vip" ? "7601" : "7602";
            var echo = Cluster.StartProgramIn(mode, server, IsthmusPaths.Native("ist_udp"), "server", bind == "vip" ? serverVip : "0.0.0.0", port);
            try
            {
                await echo.WaitForLineAsync(l => l.StartsWith("LISTENING ", StringComparison.Ordinal), Timeout, OutputStream.StandardOutput);
                var result = await Cluster.RunProgramInAsync(mode, client, Timeout, IsthmusPaths.Native("ist_udp"), "client", clientMode, serverVip, port, "1", "1400", "65507");
                output.WriteLine($"[{mode}] {client} -> {server} udp {clientMode}: {result.StandardOutput.Replace('\n', ' ')}");
                Assert.True(result.ExitCode == 0, result.ToString());
                foreach (var size in UdpSizes)
                {
                    Assert.Contains($"OK size={size} peer={serverVip}:{port}", result.StandardOutput, StringComparison.Ordinal);
                }

                if (clientMode == "msg")
                {
                    // IP_PKTINFO of the replies: this node's VIP, never its loopback image.
                    Assert.All(result.StandardOutput.Split('\n').Where(l => l.StartsWith("PKTINFO", StringComparison.Ordinal)), l => Assert.Equal($"PKTINFO dst={clientVip}", l));
                    Assert.Contains("PKTINFO dst=", result.StandardOutput, StringComparison.Ordinal);
                }

                await echo.WaitForLineAsync(l => l.StartsWith($"RECV peer={clientVip}:", StringComparison.Ordinal), Timeout, OutputStream.StandardOutput);
            }
            finally
            {
                await echo.StopAsync();
            }
        });

    [GeneratedRegex(@"CONNECTED local=(?<lip>[0-9.]+):(?<lport>[0-9]+) peer=(?<pip>[0-9.]+):(?<pport>[0-9]+)")]
    private static partial Regex Connected();
}
