using System.Diagnostics;
using System.Globalization;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// Statically linked programs across the overlay under the seccomp supervisor (<c>--mode auto</c> picks it for
/// them: LD_PRELOAD cannot reach a static binary, so an address that shows up translated proves the
/// supervisor did it): busybox-static nc and wget/httpd, a static Go HTTP server and client; the auto rule;
/// and what happens when the supervisor dies.
/// </summary>
public sealed class SeccompTests(OverlayFixture fixture, ITestOutputHelper output) : IClassFixture<OverlayFixture>
{
    private const string Busybox = "/bin/busybox";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly Lazy<Task<string>> GoHttp = new(() => BuildGoHttpAsync(cgo: false));
    private static readonly Lazy<Task<string>> DynamicGoHttp = new(() => BuildGoHttpAsync(cgo: true));
    private static readonly string[] NamesOfB1 = ["b1.b.it", "B1.b.it.", "b1"];
    private OverlayCluster Cluster => fixture.Cluster;

    [Fact]
    public Task BusyboxNc_ClientAndServer_AcrossSites() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        RequireStatic(Busybox);
        // The server is a shell pipeline: the shell's children (echo, nc) are supervised too.
        var server = Cluster.StartProgramIn("auto", "b1", Busybox, "sh", "-c", $"echo from-server | {Busybox} nc -l -p 7301");
        try
        {
            await WaitListeningAsync("b1", 7301);
            var client = await Cluster.RunProgramInAsync("auto", "a1", Timeout, Busybox, "sh", "-c", $"echo from-client | {Busybox} nc {Cluster.Vips["b1"]} 7301");
            output.WriteLine(client.ToString());
            Assert.True(client.ExitCode == 0, client.ToString());
            Assert.Contains("from-server", client.StandardOutput, StringComparison.Ordinal);
            await server.WaitForLineAsync(l => l == "from-client", Timeout, OutputStream.StandardOutput);
            Assert.True(await Poll.UntilAsync(() => server.HasExited, Timeout), "nc -l did not exit after its connection");
            Assert.Equal(0, server.ExitCode);
        }
        finally
        {
            await server.StopAsync();
        }
    });

    [Fact]
    public Task BusyboxWget_FromHttpd_AcrossSites_ServerSeesClientVip() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        RequireStatic(Busybox);
        var root = Directory.CreateTempSubdirectory("isthmus-httpd-").FullName;
        await File.WriteAllTextAsync(Path.Combine(root, "hello.txt"), "hello over the overlay\n");
        var b1 = Cluster.Vips["b1"];
        // Bound to the VIP itself: bind(VIP) becomes bind(image) in the supervisor.
        var httpd = Cluster.StartProgramIn("auto", "b1", Busybox, "httpd", "-f", "-vv", "-p", $"{b1}:8081", "-h", root);
        try
        {
            await WaitListeningAsync("b1", 8081);
            var wget = await Cluster.RunProgramInAsync("auto", "a1", Timeout, Busybox, "wget", "-q", "-O", "-", $"http://{b1}:8081/hello.txt");
            output.WriteLine(wget.ToString());
            Assert.True(wget.ExitCode == 0, wget.ToString());
            Assert.Equal("hello over the overlay", wget.StandardOutput.TrimEnd());
            // httpd logs "IP:PORT: url:/hello.txt" with the address accept() gave it.
            await httpd.WaitForLineAsync(l => l.StartsWith($"{Cluster.Vips["a1"]}:", StringComparison.Ordinal) && l.EndsWith("url:/hello.txt", StringComparison.Ordinal), Timeout);
        }
        finally
        {
            await httpd.StopAsync();
            Directory.Delete(root, recursive: true);
        }
    });

    /// <summary>
    /// Static programs resolve with their own code (Go's resolver, busybox's nslookup, static glibc in busybox
    /// wget), by UDP queries to resolv.conf's name server; the supervisor sends them to the agent's responder.
    /// </summary>
    [Fact]
    public Task StaticPrograms_ResolveClusterNames_ForwardAndReverse_ThroughTheAgent() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        var binary = await GoHttp.Value;
        RequireStatic(binary);
        RequireStatic(Busybox);
        var b1 = Cluster.Vips["b1"];
        foreach (var name in NamesOfB1)
        {
            var go = await Cluster.RunProgramInAsync("auto", "a1", Timeout, binary, "resolve", name);
            output.WriteLine(go.ToString());
            Assert.True(go.ExitCode == 0, go.ToString());
            Assert.Equal($"ADDR {b1}\nPTR b1.b.it.", go.StandardOutput.TrimEnd());
        }

        var unknown = await Cluster.RunProgramInAsync("auto", "a1", Timeout, binary, "resolve", "zz.b.it");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no such host", unknown.StandardOutput, StringComparison.Ordinal);

        var nslookup = await Cluster.RunProgramInAsync("auto", "a2", Timeout, Busybox, "nslookup", "b1.b.it");
        output.WriteLine(nslookup.ToString());
        Assert.True(nslookup.ExitCode == 0, nslookup.ToString());
        Assert.Contains($"Address: {b1}", nslookup.StandardOutput, StringComparison.Ordinal);

        var root = Directory.CreateTempSubdirectory("isthmus-httpd-").FullName;
        await File.WriteAllTextAsync(Path.Combine(root, "name.txt"), "found by name\n");
        var httpd = Cluster.StartProgramIn("auto", "b1", Busybox, "httpd", "-f", "-vv", "-p", "8082", "-h", root);
        try
        {
            await WaitListeningAsync("b1", 8082);
            var wget = await Cluster.RunProgramInAsync("auto", "a1", Timeout, Busybox, "wget", "-q", "-O", "-", "http://b1.b.it:8082/name.txt");
            output.WriteLine(wget.ToString());
            Assert.True(wget.ExitCode == 0, wget.ToString());
            Assert.Equal("found by name", wget.StandardOutput.TrimEnd());
        }
        finally
        {
            await httpd.StopAsync();
            Directory.Delete(root, recursive: true);
        }
    });

    /// <summary>
    /// A dynamically linked Go program still makes its socket calls itself, so LD_PRELOAD would never see
    /// them: the default mode (auto) recognises Go's build-id note and supervises it.
    /// </summary>
    [Fact]
    public Task DynamicGoProgram_DefaultMode_IsSupervised_ResolvesAndConnectsByName() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        var binary = await DynamicGoHttp.Value;
        var kind = Isthmus.Interpose.ProgramKind.Inspect(binary);
        Assert.True(kind.IsElf && !kind.IsStatic && kind.IsGo, $"{binary}: expected a dynamically linked Go program, got {kind}");
        var (a1, b1) = (Cluster.Vips["a1"], Cluster.Vips["b1"]);

        var resolve = await RunRunAsync("a1", false, Timeout, "--", binary, "resolve", "b1.b.it");
        Assert.True(resolve.ExitCode == 0, resolve.ToString());
        Assert.Equal($"ADDR {b1}\nPTR b1.b.it.", resolve.StandardOutput.TrimEnd());

        var server = StartRun("b1", false, "--", binary, "server", "8093");
        try
        {
            await server.WaitForLineAsync(l => l == "LISTENING 8093", Timeout, OutputStream.StandardOutput);
            var client = await RunRunAsync("a1", false, Timeout, "--", binary, "client", "http://b1.b.it:8093/", "20", "4");
            Assert.True(client.ExitCode == 0, client.ToString());
            Assert.Contains("DONE ok=20 failed=0", client.StandardOutput, StringComparison.Ordinal);
            Assert.Contains($"BODIES hello {a1}\n", client.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            await server.StopAsync();
        }
    });

    /// <summary>
    /// preWaitKillable: the launcher installs the filter without WAIT_KILLABLE_RECV, as on kernels before 5.19,
    /// so signals (Go's SIGURG preemption, SIGALRM) interrupt trapped calls and the restart paths are exercised.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task StaticGoHttp_1000Requests_Over50Connections_ServerSeesClientVip(bool preWaitKillable) => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        var binary = await GoHttp.Value;
        RequireStatic(binary);
        var (a1, b1) = (Cluster.Vips["a1"], Cluster.Vips["b1"]);
        var port = preWaitKillable ? "8091" : "8090";
        var server = StartRun("b1", preWaitKillable, "--mode", "auto", "--", binary, "server", port);
        try
        {
            await server.WaitForLineAsync(l => l == $"LISTENING {port}", Timeout, OutputStream.StandardOutput);
            var client = await RunRunAsync("a1", preWaitKillable, TimeSpan.FromSeconds(180), "--mode", "auto", "--", binary, "client", $"http://{b1}:{port}/", "1000", "50");
            output.WriteLine(string.Join('\n', client.StandardOutput.Split('\n').Where(l => !l.StartsWith("LOCAL", StringComparison.Ordinal))));
            Assert.True(client.ExitCode == 0, client.ToString());
            Assert.Contains("DONE ok=1000 failed=0", client.StandardOutput, StringComparison.Ordinal);
            Assert.Contains($"BODIES hello {a1}\n", client.StandardOutput, StringComparison.Ordinal);
            var locals = client.StandardOutput.Split('\n').Where(l => l.StartsWith("LOCAL ", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(locals);
            Assert.All(locals, l => Assert.StartsWith($"LOCAL {a1}:", l, StringComparison.Ordinal));

            // Every connection the server accepted came from a1's VIP, to b1's VIP.
            Assert.True(await Poll.UntilAsync(() => server.StandardOutputLines.Any(l => l.StartsWith("CONN ", StringComparison.Ordinal)), Timeout));
            var conns = server.StandardOutputLines.Where(l => l.StartsWith("CONN ", StringComparison.Ordinal)).ToList();
            output.WriteLine($"server saw {conns.Count} connections, e.g. {conns[0]}");
            Assert.All(conns, l => Assert.Matches($"^CONN remote={a1.Replace(".", "\\.", StringComparison.Ordinal)}:[0-9]+ local={b1.Replace(".", "\\.", StringComparison.Ordinal)}:{port}$", l));
            Assert.DoesNotContain(server.StandardOutputLines, l => l.StartsWith("ERROR", StringComparison.Ordinal));
        }
        finally
        {
            await server.StopAsync();
        }
    });

    [Fact]
    public async Task AutoMode_PicksSeccompForStatic_PreloadForDynamic()
    {
        var vip = Cluster.Vips["a1"];
        // Static: the supervisor logs its decisions.
        var stat = await Cluster.IsthmusAsync(Cluster.Host("a1"), Timeout, "run", "--node", "a1", "--mode", "auto", "--debug-shim", "--", Busybox, "nc", "-w", "2", vip, "1");
        Assert.Contains("isthmus-seccomp: connect", stat.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("isthmus-preload[", stat.StandardError, StringComparison.Ordinal);

        // Dynamic: the preload shim logs its decisions, the supervisor is not there.
        var dyn = await Cluster.IsthmusAsync(Cluster.Host("a1"), Timeout, "run", "--node", "a1", "--mode", "auto", "--debug-shim", "--", IsthmusPaths.Native("ist_client"), "block", vip, "1", "1");
        Assert.Contains("isthmus-preload[", dyn.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("isthmus-seccomp:", dyn.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetuidProgram_IsRefused_WithTheReason()
    {
        var dir = Directory.CreateTempSubdirectory("isthmus-setuid-").FullName;
        try
        {
            var copy = Path.Combine(dir, "busybox");
            File.Copy(Busybox, copy);
            File.SetUnixFileMode(copy, UnixFileMode.SetUser | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            foreach (var mode in new[] { "auto", "seccomp" })
            {
                var result = await Cluster.RunProgramInAsync(mode, "a1", Timeout, copy, "true");
                Assert.Equal(125, result.ExitCode);
                Assert.Contains("setuid", result.StandardError, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public Task SupervisorKilled_ProgramAndDescendantsDie_NothingHalfWorking() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        var b1 = Cluster.Vips["b1"];
        // A shell that leaves a background child behind, then becomes the server: the child is a descendant
        // that PDEATHSIG alone would not reach.
        var server = Cluster.StartProgramIn("seccomp", "b1", Busybox, "sh", "-c", $"{Busybox} sleep 600 & echo SLEEP $!; exec {IsthmusPaths.Native("ist_server")} fork {b1} 7320 0");
        try
        {
            await server.WaitForLineAsync(l => l == $"LISTENING {b1}:7320", Timeout, OutputStream.StandardOutput);
            var sleeper = int.Parse(server.StandardOutputLines.First(l => l.StartsWith("SLEEP ", StringComparison.Ordinal))[6..], CultureInfo.InvariantCulture);
            var before = await Cluster.RunProgramInAsync("seccomp", "a1", Timeout, IsthmusPaths.Native("ist_client"), "block", b1, "7320", "1000");
            Assert.True(before.ExitCode == 0, before.ToString());

            // supervisor (isthmus) -> watchdog (launcher, subreaper) -> program (ist_server) -> sleep
            var watchdog = Assert.Single(ChildrenOf(server.Id));
            var program = Assert.Single(ChildrenOf(watchdog));
            Assert.Contains(sleeper, ChildrenOf(program));
            Assert.True(ProcFs.SignalProcess(server.Id, Signals.Kill)); // the supervisor alone, not its group

            // Nothing is left running with trapped calls that would fail with ENOSYS.
            Assert.True(await Poll.UntilAsync(() => !ProcFs.IsAlive(program) && !ProcFs.IsAlive(sleeper) && !ProcFs.IsAlive(watchdog), Timeout),
                $"alive after the supervisor's death: program {ProcFs.IsAlive(program)}, its child {ProcFs.IsAlive(sleeper)}, watchdog {ProcFs.IsAlive(watchdog)}");
            var after = await Cluster.RunProgramInAsync("seccomp", "a1", Timeout, IsthmusPaths.Native("ist_client"), "block", b1, "7320", "1");
            Assert.Contains("CONNECT_ERROR errno=ECONNREFUSED", after.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            await server.StopAsync();
        }
    });

    [Fact]
    public async Task ExitCodeAndSignal_AreTheProgramsAfterItsDescendantsEnd()
    {
        var code = await Cluster.RunProgramInAsync("seccomp", "a1", Timeout, Busybox, "sh", "-c", "exit 7");
        Assert.Equal(7, code.ExitCode);
        var killed = await Cluster.RunProgramInAsync("seccomp", "a1", Timeout, Busybox, "sh", "-c", "kill -TERM $$");
        Assert.Equal(128 + Signals.Terminate, killed.ExitCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task BlockingAccept_UnderSignalStorm_RestartsAndStillAccepts(bool preWaitKillable) => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        var (a1, b1) = (Cluster.Vips["a1"], Cluster.Vips["b1"]);
        var script = Path.Combine(AppContext.BaseDirectory, "Scripts", "signal_accept.py");
        var port = preWaitKillable ? "7331" : "7330";
        var server = StartRun("b1", preWaitKillable, "--mode", "seccomp", "--", "/usr/bin/python3", script, b1, port);
        try
        {
            await server.WaitForLineAsync(l => l == $"LISTENING {b1}:{port}", Timeout, OutputStream.StandardOutput);
            // The handler count grows only if the trapped accept gives way to the signal and is restarted.
            await server.WaitForLineAsync(l => l.StartsWith("TICKS ", StringComparison.Ordinal) && int.Parse(l[6..], CultureInfo.InvariantCulture) >= 3, Timeout, OutputStream.StandardOutput);
            var client = await Cluster.RunProgramInAsync("auto", "a1", Timeout, Busybox, "nc", b1, port);
            Assert.True(client.ExitCode == 0, client.ToString());
            Assert.Equal("hi", client.StandardOutput.Trim());
            await server.WaitForLineAsync(l => l.StartsWith($"ACCEPT {a1} ", StringComparison.Ordinal), Timeout, OutputStream.StandardOutput);
        }
        finally
        {
            await server.StopAsync();
        }
    });

    [Fact]
    public async Task IoUringSetup_IsEnosys_UnderTheFilter()
    {
        // Natively the ring is available on this kernel, so the ENOSYS below is the filter's doing.
        var native = await Cluster.Host("a1").RunAsync(IsthmusPaths.Native("ist_uring"), [], Timeout);
        Assert.Contains("IO_URING ok", native.StandardOutput, StringComparison.Ordinal);

        var result = await Cluster.RunProgramInAsync("seccomp", "a1", Timeout, IsthmusPaths.Native("ist_uring"));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("IO_URING errno=ENOSYS", result.StandardOutput, StringComparison.Ordinal);
    }

    private Dictionary<string, string?> Environment(bool preWaitKillable)
    {
        var env = new Dictionary<string, string?>(Cluster.Environment);
        if (preWaitKillable)
        {
            env["ISTHMUS_SECCOMP_NO_WAIT_KILLABLE"] = "1";
        }

        return env;
    }

    private HostProcess StartRun(string node, bool preWaitKillable, params string[] args) =>
        Cluster.Host(node).Start(IsthmusPaths.Isthmus, ["run", "--node", node, .. args], Environment(preWaitKillable));

    private Task<CommandResult> RunRunAsync(string node, bool preWaitKillable, TimeSpan timeout, params string[] args) =>
        Cluster.Host(node).RunAsync(IsthmusPaths.Isthmus, ["run", "--node", node, .. args], timeout, Environment(preWaitKillable));

    private static List<int> ChildrenOf(int pid)
    {
        var children = new List<int>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            var text = File.ReadAllText(Path.Combine(task, "children"));
            children.AddRange(text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)));
        }

        return children;
    }

    /// <summary>Waits until something listens on TCP <paramref name="port"/> in the node's namespace.</summary>
    private async Task WaitListeningAsync(string node, int port)
    {
        var host = Cluster.Host(node);
        var listening = await Poll.UntilAsync(
            async () => (await host.RunAsync("ss", ["-Hltn", $"sport = :{port}"], Timeout).ConfigureAwait(false)).StandardOutput.Contains("LISTEN", StringComparison.Ordinal),
            Timeout,
            TimeSpan.FromMilliseconds(100));
        Assert.True(listening, $"nothing listens on port {port} at {node}");
    }

    /// <summary>A program that is not statically linked would be interposed by preload, proving nothing here.</summary>
    private static void RequireStatic(string path)
    {
        Assert.True(File.Exists(path), $"{path} is missing (.ci/install-deps.sh installs busybox-static and golang-go)");
        var kind = Isthmus.Interpose.ProgramKind.Inspect(path);
        Assert.True(kind.IsElf && kind.IsStatic, $"{path} is not a statically linked ELF program");
    }

    /// <summary>
    /// Builds Overlay/Scripts/gohttp.go once per test run: standard library only, CGO_ENABLED=0 (static; with
    /// <paramref name="cgo"/>, CGO_ENABLED=1: dynamically linked with libc, as distribution Go programs often are), GOPATH
    /// and GOCACHE in a temporary directory, GOTOOLCHAIN=local and GOPROXY=off (never the network).
    /// </summary>
    private static async Task<string> BuildGoHttpAsync(bool cgo)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "Scripts", "gohttp.go");
        var dir = Directory.CreateTempSubdirectory(cgo ? "isthmus-go-cgo-" : "isthmus-go-").FullName;
        var binary = Path.Combine(dir, "gohttp");
        var go = File.Exists("/usr/bin/go") ? "/usr/bin/go" : "go";
        var psi = new ProcessStartInfo(go, ["build", "-o", binary, source])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dir,
        };
        psi.Environment["CGO_ENABLED"] = cgo ? "1" : "0";
        psi.Environment["GOPATH"] = Path.Combine(dir, "gopath");
        psi.Environment["GOCACHE"] = Path.Combine(dir, "gocache");
        psi.Environment["GOTOOLCHAIN"] = "local";
        psi.Environment["GOPROXY"] = "off";
        psi.Environment["GO111MODULE"] = "off";
        psi.Environment["GOFLAGS"] = "";
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start go");
        var stderr = process.StandardError.ReadToEndAsync();
        _ = await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        foreach (var scratch in new[] { "gopath", "gocache" })
        {
            try
            {
                Directory.Delete(Path.Combine(dir, scratch), recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return process.ExitCode == 0 && File.Exists(binary) ? binary
            : throw new InvalidOperationException($"go build failed ({process.ExitCode}): {await stderr.ConfigureAwait(false)}");
    }
}
