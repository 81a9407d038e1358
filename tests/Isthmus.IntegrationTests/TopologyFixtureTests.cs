using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests;

/// <summary>The namespace fixture itself: what it builds, isolates, breaks and cleans up.</summary>
public sealed partial class TopologyFixtureTests(ITestOutputHelper output)
{
    private const string Python = "/usr/bin/python3";

    private static readonly TimeSpan Short = TimeSpan.FromSeconds(10);

    // Receives one connection to the end, then prints "received BYTES SHA256 from PEER" and closes.
    private const string SinkServer = """
        import hashlib, socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], int(sys.argv[2])))
        s.listen(1)
        print("listening", flush=True)
        c, peer = s.accept()
        h, n = hashlib.sha256(), 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        print(f"received {n} {h.hexdigest()} from {peer[0]}", flush=True)
        c.close()
        """;

    // Sends BYTES random bytes, waits for the server to close, prints "sent BYTES SHA256 SECONDS".
    private const string SendClient = """
        import hashlib, os, socket, sys, time
        size = int(sys.argv[3])
        data = os.urandom(size)
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
        t = time.monotonic()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        print(f"sent {size} {hashlib.sha256(data).hexdigest()} {time.monotonic() - t:.3f}", flush=True)
        """;

    // For each HOST:PORT prints "HOST:PORT RESULT SECONDS", RESULT = connected | errno name | timeout.
    private const string ConnectProbe = """
        import errno, socket, sys, time
        for target in sys.argv[1:]:
            host, port = target.rsplit(":", 1)
            s = socket.socket()
            s.settimeout(5)
            t = time.monotonic()
            try:
                s.connect((host, int(port)))
                r = "connected"
            except OSError as e:
                r = errno.errorcode.get(e.errno, str(e)) if e.errno else "timeout"
            print(f"{target} {r} {time.monotonic() - t:.3f}", flush=True)
            s.close()
        """;

    [Fact]
    public async Task TwoSitesOfTwoNodes_BuildWithThePlannedAddressesAndIsolation()
    {
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(2, 2), output);

        Assert.Matches("^i[a-z0-9]{5}$", topology.Prefix);
        var a = topology.Sites["a"];
        var b = topology.Sites["b"];
        Assert.Equal(("192.0.2.1", "203.0.113.1"), (a.Gateway.Address, a.Gateway.WanAddress));
        Assert.Equal(("198.51.100.1", "203.0.113.2"), (b.Gateway.Address, b.Gateway.WanAddress));
        Assert.Equal(["192.0.2.10", "192.0.2.11"], a.Nodes.Select(n => n.Address));
        Assert.Equal(["198.51.100.10", "198.51.100.11"], b.Nodes.Select(n => n.Address));
        Assert.Equal($"{topology.Prefix}-a-n1", a.Nodes[0].Namespace);
        Assert.Equal($"{topology.Prefix}-wan", topology.Wan.Namespace);

        string[] names = ["wan", "a-gw", "a-n1", "a-n2", "b-gw", "b-n1", "b-n2"];
        var expected = names.Select(n => $"{topology.Prefix}-{n}").Order();
        Assert.Equal(expected, SiteTopology.ListNamespaces(topology.Prefix + "-").Order());
        Assert.StartsWith($"owner {Environment.ProcessId} ", File.ReadAllText(topology.MarkerPath), StringComparison.Ordinal);

        foreach (var ns in topology.Namespaces)
        {
            Assert.Equal("", (await ns.IpAsync("route", "show", "default")).Trim());
            Assert.Equal("", (await ns.IpAsync("-6", "route", "show", "default")).Trim());
            var forward = await ns.RunAsync("/bin/cat", ["/proc/sys/net/ipv4/ip_forward"], Short);
            Assert.Equal("0", forward.EnsureSuccess().StandardOutput.Trim());
            Assert.Contains("inet6 ::1", await ns.IpAsync("addr", "show", "dev", "lo"), StringComparison.Ordinal);
        }

        // Gateways have only connected routes.
        var gwRoutes = await a.Gateway.IpAsync("route", "show");
        Assert.Equal(2, gwRoutes.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("192.0.2.0/24", gwRoutes, StringComparison.Ordinal);
        Assert.Contains("203.0.113.0/24", gwRoutes, StringComparison.Ordinal);
        // New links carry no IPv6 (no DAD noise), lo keeps it.
        Assert.DoesNotContain("inet6", await a.Nodes[0].IpAsync("addr", "show", "dev", a.Nodes[0].LanInterface), StringComparison.Ordinal);

        var report = await topology.IsolationCheckAsync();
        output.WriteLine(report.ToString());
        Assert.True(report.Ok);
        Assert.Contains(report.Checks, c => c is { From: "a-n1", To: "a-gw", ExpectReach: true, Reached: true });
        Assert.Contains(report.Checks, c => c is { From: "a-gw", To: "b-gw", Address: "203.0.113.2", Reached: true });
        Assert.Contains(report.Checks, c => c is { From: "a-n1", To: "b-n1", ExpectReach: false, Reached: false });
        Assert.Contains(report.Checks, c => c is { From: "b-n2", To: "a-gw", Address: "203.0.113.1", Reached: false });
    }

    [Fact]
    public async Task FourSitesOfFourNodes_Build_AndHoldIsolation()
    {
        var clock = Stopwatch.StartNew();
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(4, 4), output);
        output.WriteLine($"built in {clock.ElapsedMilliseconds} ms");

        Assert.Equal(1 + 4 + 16, SiteTopology.ListNamespaces(topology.Prefix + "-").Count);
        Assert.Equal("198.18.1.1", topology.Sites["c"].Gateway.Address);
        Assert.Equal("198.18.2.13", topology.Sites["d"].Nodes[3].Address);
        Assert.Equal("203.0.113.4", topology.Sites["d"].Gateway.WanAddress);
        var report = await topology.IsolationCheckAsync();
        Assert.True(report.Ok, report.ToString());
        output.WriteLine($"{report.Checks.Count} checks, done at {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task TcpTransferBetweenGateways_DeliversEveryByte()
    {
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(2, 1), output);
        var a = topology.Sites["a"].Gateway;
        var b = topology.Sites["b"].Gateway;

        var server = b.Start(Python, "-c", SinkServer, b.WanAddress, "5201");
        await server.WaitForLineAsync(ListeningLine(), Short);
        var client = await a.RunAsync(Python, ["-c", SendClient, b.WanAddress, "5201", (8 << 20).ToString(CultureInfo.InvariantCulture)], Short);
        client.EnsureSuccess();
        Assert.Equal(0, await server.WaitForExitAsync(Short));

        var sent = client.StandardOutput.Trim().Split(' ');
        var received = server.StandardOutput.Split('\n').Single(l => l.StartsWith("received ", StringComparison.Ordinal)).Split(' ');
        Assert.Equal("8388608", sent[1]);
        Assert.Equal(sent[1], received[1]);
        Assert.Equal(sent[2], received[2]);
        Assert.Equal(a.WanAddress, received[4]);
    }

    [Fact]
    public async Task NodeConnectingToAnotherSite_FailsAtOnceWithNetworkUnreachable()
    {
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(2, 1), output);
        var a = topology.Sites["a"];
        var b = topology.Sites["b"];
        var listener = a.Gateway.Start(Python, "-c", SinkServer, "0.0.0.0", "7000");
        await listener.WaitForLineAsync(ListeningLine(), Short);

        var probe = await a.Nodes[0].RunAsync(Python,
            ["-c", ConnectProbe, $"{a.Gateway.Address}:7000", $"{b.Nodes[0].Address}:7000", $"{b.Gateway.Address}:7000", $"{b.Gateway.WanAddress}:7000"],
            Short);
        probe.EnsureSuccess();
        var results = probe.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' '))
            .ToDictionary(f => f[0], f => (Result: f[1], Seconds: double.Parse(f[2], CultureInfo.InvariantCulture)));

        Assert.Equal("connected", results[$"{a.Gateway.Address}:7000"].Result); // own gateway: reachable
        foreach (var target in new[] { b.Nodes[0].Address, b.Gateway.Address, b.Gateway.WanAddress })
        {
            var (result, seconds) = results[$"{target}:7000"];
            Assert.Equal("ENETUNREACH", result);
            Assert.True(seconds < 1, $"connect to {target} took {seconds} s; no route should fail at once");
        }
    }

    [Fact]
    public async Task CutWan_StopsGatewayTraffic_RestoreBringsItBack()
    {
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(2, 0), output);
        var a = topology.Sites["a"].Gateway;
        var b = topology.Sites["b"].Gateway;
        Assert.True(await a.CanPingAsync(b.WanAddress));

        await topology.CutWanAsync("b");
        Assert.Contains("state DOWN", await topology.Wan.IpAsync("link", "show", "dev", topology.Sites["b"].WanPort), StringComparison.Ordinal);
        Assert.False(await a.CanPingAsync(b.WanAddress));
        Assert.False(await b.CanPingAsync(a.WanAddress));

        await topology.RestoreWanAsync("b");
        await Poll.AssertAsync(() => a.CanPingAsync(b.WanAddress), Short, "a-gw reaches b-gw again after restore");
        Assert.True(await b.CanPingAsync(a.WanAddress));
    }

    [Fact]
    public async Task LimitWan_InstallsTbfThatReallyLimits_UnlimitRemovesIt()
    {
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(2, 0), output);
        var a = topology.Sites["a"].Gateway;
        var b = topology.Sites["b"];

        await topology.LimitWanAsync("b", "40mbit");
        var wanSide = await topology.Wan.TcAsync("qdisc", "show", "dev", b.WanPort);
        var gwSide = await b.Gateway.TcAsync("qdisc", "show", "dev", b.Gateway.WanInterface);
        Assert.Contains("qdisc tbf", wanSide, StringComparison.Ordinal);
        Assert.Contains("rate 40Mbit", wanSide, StringComparison.Ordinal);
        Assert.Contains("qdisc tbf", gwSide, StringComparison.Ordinal);
        Assert.DoesNotContain("tbf", await topology.Wan.TcAsync("qdisc", "show", "dev", topology.Sites["a"].WanPort), StringComparison.Ordinal);

        // 5 MB at 40 Mbit/s is 1 s; the 256 KB burst cannot make it much faster.
        var limited = await TransferSecondsAsync(a, b.Gateway, 5_000_000);
        output.WriteLine($"5 MB limited: {limited:0.000} s");
        Assert.True(limited > 0.7, $"5 MB through a 40 Mbit/s tbf took only {limited} s");

        await topology.UnlimitWanAsync("b");
        Assert.DoesNotContain("tbf", await topology.Wan.TcAsync("qdisc", "show", "dev", b.WanPort), StringComparison.Ordinal);
        Assert.DoesNotContain("tbf", await b.Gateway.TcAsync("qdisc", "show", "dev", b.Gateway.WanInterface), StringComparison.Ordinal);
        var unlimited = await TransferSecondsAsync(a, b.Gateway, 5_000_000);
        output.WriteLine($"5 MB unlimited: {unlimited:0.000} s");
        Assert.True(unlimited < limited, $"unlimited {unlimited} s, limited {limited} s");
    }

    [Fact]
    public async Task WanRateInSpec_LimitsEverySiteAtCreation()
    {
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(2, 0, wanRate: "1gbit"), output);
        foreach (var site in topology.SiteList)
        {
            Assert.Contains("rate 1Gbit", await topology.Wan.TcAsync("qdisc", "show", "dev", site.WanPort), StringComparison.Ordinal);
            Assert.Contains("rate 1Gbit", await site.Gateway.TcAsync("qdisc", "show", "dev", site.Gateway.WanInterface), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Dispose_StopsEveryProcessGroup_AndDeletesEveryNamespace()
    {
        var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(2, 1), output);
        HostProcess[] processes;
        var clock = new Stopwatch();
        try
        {
            var a = topology.Sites["a"];
            var b = topology.Sites["b"];
            // A group with a background child, and one that ignores SIGTERM (needs the SIGKILL after 2 s).
            var forking = a.Nodes[0].Start("/bin/sh", "-c", "sleep 600 & echo child $!; sleep 600");
            var stubborn = b.Gateway.Start("/bin/sh", "-c", "trap '' TERM; echo ready; sleep 600");
            var child = int.Parse((await forking.WaitForLineAsync(ChildLine(), Short))["child ".Length..], CultureInfo.InvariantCulture);
            await stubborn.WaitForLineAsync(l => l == "ready", Short);
            processes = [forking, stubborn];
            Assert.All(processes, p => Assert.True(p.IsGroupAlive()));
            Assert.True(Directory.Exists($"/proc/{child}"));
            Assert.Contains($"pgid {forking.Id}", File.ReadAllText(topology.MarkerPath), StringComparison.Ordinal);
            clock.Start();
            await topology.DisposeAsync();
            clock.Stop();

            Assert.All(processes, p => Assert.False(p.IsGroupAlive(), $"{p} still alive"));
            Assert.False(ProcessAlive(child), $"background child {child} survived");
            Assert.All(processes, p => Assert.True(p.HasExited));
        }
        finally
        {
            await topology.DisposeAsync(); // idempotent; cleans up when an assertion above failed
        }

        output.WriteLine($"dispose took {clock.ElapsedMilliseconds} ms");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.9), "the TERM-ignoring group must get its 2 s grace");
        Assert.Empty(SiteTopology.ListNamespaces(topology.Prefix + "-"));
        Assert.False(File.Exists(topology.MarkerPath));
        Assert.Throws<ObjectDisposedException>(() => topology.Sites["a"].Gateway.Start("/bin/true"));
    }

    [Fact]
    public async Task SweepStale_DeletesOnlyMarkedNamespacesOfDeadOwners()
    {
        TopologyRequirements.EnsureRoot();
        var stale = "i" + Guid.NewGuid().ToString("N")[..5];
        var unmarked = "i" + Guid.NewGuid().ToString("N")[..5];
        var live = "i" + Guid.NewGuid().ToString("N")[..5];
        var marker = (string p) => Path.Combine(SiteTopology.MarkerDirectory, p + ".pid");
        Process? leftover = null;
        try
        {
            // A dead owner: a process we start, note, and let finish.
            int deadPid;
            string deadStart;
            using (var dead = Process.Start("/bin/sleep", "0.2"))
            {
                deadPid = dead.Id;
                deadStart = File.ReadAllText($"/proc/{deadPid}/stat").Split(") ")[1].Split(' ')[19];
                await dead.WaitForExitAsync(new CancellationTokenSource(Short).Token);
            }

            foreach (var p in new[] { stale, unmarked, live })
            {
                await Shell.CheckAsync("ip", "netns", "add", $"{p}-x");
            }

            // A process of the dead run, in its namespace and its own process group.
            leftover = Process.Start(new ProcessStartInfo("/usr/bin/setsid", ["/usr/sbin/ip", "netns", "exec", $"{stale}-x", "/bin/sleep", "600"]))!;
            Directory.CreateDirectory(SiteTopology.MarkerDirectory);
            await File.WriteAllTextAsync(marker(stale), $"owner {deadPid} {deadStart}\npgid {leftover.Id}\n");
            var self = File.ReadAllText($"/proc/{Environment.ProcessId}/stat").Split(") ")[1].Split(' ')[19];
            await File.WriteAllTextAsync(marker(live), $"owner {Environment.ProcessId} {self}\n");
            await Poll.AssertAsync(
                async () => (await Shell.CheckAsync("ip", "netns", "pids", $"{stale}-x")).Contains(leftover.Id.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal),
                Short, "the leftover process runs in the stale namespace");

            var swept = SiteTopology.SweepStale(output);

            Assert.Contains(stale, swept);
            Assert.DoesNotContain(live, swept);
            Assert.DoesNotContain(unmarked, swept);
            Assert.Empty(SiteTopology.ListNamespaces(stale + "-"));
            Assert.False(File.Exists(marker(stale)));
            Assert.True(leftover.WaitForExit(Short), "the stale run's process group was not killed");
            Assert.Single(SiteTopology.ListNamespaces(unmarked + "-"));
            Assert.Single(SiteTopology.ListNamespaces(live + "-"));
        }
        finally
        {
            if (leftover is { HasExited: false })
            {
                leftover.Kill();
            }

            leftover?.Dispose();
            foreach (var p in new[] { stale, unmarked, live })
            {
                await Shell.RunAsync("ip", ["netns", "delete", $"{p}-x"]);
                File.Delete(marker(p));
            }
        }
    }

    [Fact]
    public async Task HostProcess_CapturesOutput_PassesEnvironment_AndReportsFailures()
    {
        await using var topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(1, 1), output);
        var node = topology.Sites["a"].Nodes[0];

        // Environment, stdout and stderr, stdin.
        var env = new Dictionary<string, string?> { ["ISTHMUS_TEST_VALUE"] = "42" };
        var echo = node.Start("/bin/sh", ["-c", "echo value=$ISTHMUS_TEST_VALUE; echo oops >&2; read line; echo got=$line"], env);
        Assert.Equal("value=42", await echo.WaitForLineAsync(l => l.StartsWith("value=", StringComparison.Ordinal), Short));
        Assert.Equal("oops", await echo.WaitForLineAsync(new Regex("^oops$"), Short, OutputStream.StandardError));
        echo.WriteStdin("hello\n");
        Assert.Equal(0, await echo.WaitForExitAsync(Short));
        Assert.Equal("value=42\ngot=hello", echo.StandardOutput);
        Assert.Equal("oops", echo.StandardError);

        // The program runs inside the node's namespace.
        var addr = await node.RunAsync("/usr/sbin/ip", ["-4", "-o", "addr", "show"], Short);
        Assert.Contains(node.Address + "/24", addr.EnsureSuccess().StandardOutput, StringComparison.Ordinal);

        // Exiting before the awaited line fails at once, with the output in the message.
        var quitter = node.Start("/bin/sh", "-c", "echo about to fail; exit 3");
        var ended = await Assert.ThrowsAsync<HostProcessException>(() => quitter.WaitForLineAsync(new Regex("never"), Short));
        Assert.Contains("about to fail", ended.Message, StringComparison.Ordinal);
        Assert.Equal(3, quitter.ExitCode);

        // A line that does not come in time: TimeoutException, the process keeps running.
        var quiet = node.Start(Python, "-c", "import time; print('up', flush=True); time.sleep(600)");
        await quiet.WaitForLineAsync(l => l == "up", Short);
        var timeout = await Assert.ThrowsAsync<TimeoutException>(() => quiet.WaitForLineAsync(l => l == "never", TimeSpan.FromMilliseconds(200)));
        Assert.Contains("up", timeout.Message, StringComparison.Ordinal);
        Assert.False(quiet.HasExited);

        // SIGINT reaches the group: Python raises KeyboardInterrupt.
        Assert.True(quiet.Signal(Signals.Interrupt));
        Assert.NotEqual(0, await quiet.WaitForExitAsync(Short));
        Assert.Contains("KeyboardInterrupt", quiet.StandardError, StringComparison.Ordinal);
        Assert.False(quiet.Signal(Signals.Terminate)); // nothing left to signal

        // RunAsync kills on timeout and reports the output.
        var slow = await Assert.ThrowsAsync<TimeoutException>(() =>
            node.RunAsync("/bin/sh", ["-c", "echo started; sleep 600"], TimeSpan.FromMilliseconds(500)));
        Assert.Contains("started", slow.Message, StringComparison.Ordinal);
        var slowProcess = topology.Processes[^1];
        Assert.False(slowProcess.IsGroupAlive());

        // Commands that fail say what failed.
        var failed = await Assert.ThrowsAsync<CommandFailedException>(() => node.IpAsync("link", "set", "dev", "nonexistent0", "up"));
        Assert.Contains("ip -n " + node.Namespace, failed.Message, StringComparison.Ordinal);
    }

    private static async Task<double> TransferSecondsAsync(GatewayHost from, GatewayHost to, int bytes)
    {
        var server = to.Start(Python, "-c", SinkServer, to.WanAddress, "5202");
        await server.WaitForLineAsync(ListeningLine(), Short);
        var client = await from.RunAsync(Python, ["-c", SendClient, to.WanAddress, "5202", bytes.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(30));
        client.EnsureSuccess();
        Assert.Equal(0, await server.WaitForExitAsync(Short));
        Assert.Contains($"received {bytes} ", server.StandardOutput, StringComparison.Ordinal);
        return double.Parse(client.StandardOutput.Trim().Split(' ')[3], CultureInfo.InvariantCulture);
    }

    private static bool ProcessAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    [GeneratedRegex("^listening$")]
    private static partial Regex ListeningLine();

    [GeneratedRegex("^child [0-9]+$")]
    private static partial Regex ChildLine();
}
