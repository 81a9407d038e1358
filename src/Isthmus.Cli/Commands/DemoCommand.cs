using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Isthmus.Cluster;
using Isthmus.Core;
using Isthmus.Core.Addressing;

namespace Isthmus.Cli.Commands;

/// <summary>
/// <c>isthmus demo</c>: a personal cluster of two "sites" on this machine's loopback addresses, with a real
/// HTTP server (python3) at site b and a real client at site a talking across it by VIP. Needs no root,
/// no cluster account and no network.
/// </summary>
internal static partial class DemoCommand
{
    public static Command Create()
    {
        var keep = new Option<bool>("--keep") { Description = "Keep the demo's cluster directory and logs afterwards." };
        var command = new Command("demo", "Build a two-site personal cluster on loopback, run a real server and client across it, and show what happened.") { keep };
        command.SetAction(async (result, ct) => await RunAsync(result.GetValue(keep), ct).ConfigureAwait(false));
        return command;
    }

    private static async Task<int> RunAsync(bool keep, CancellationToken cancellationToken)
    {
        var python = FindOnPath("python3") ?? throw new UserException("the demo runs python3 as its server and client; install python3", 1);
        var work = Directory.CreateTempSubdirectory("isthmus-demo-").FullName;
        var clusterDir = Path.Combine(work, "cluster");
        var runtime = Path.Combine(work, "run");
        var self = Environment.ProcessPath ?? throw new UserException("cannot find the isthmus executable", 1);
        var processes = new List<DemoProcess>();
        Step($"Cluster directory {clusterDir}");
        try
        {
            ClusterCreator.New(clusterDir, IPv4Cidr.Parse("100.64.0.0/16"), "demo");
            var a = ClusterCreator.AddSite(clusterDir, "a", new HostPort("127.0.0.1", FreePort()), new HostPort("127.0.0.2", FreePort()));
            var b = ClusterCreator.AddSite(clusterDir, "b", new HostPort("127.0.0.1", FreePort()), new HostPort("127.0.0.3", FreePort()));
            Step($"site a: subnet {a.Subnet}, router WAN {a.Wan}, LAN {a.Lan}");
            Step($"site b: subnet {b.Subnet}, router WAN {b.Wan}, LAN {b.Lan}");

            DemoProcess Start(string label, params string[] args)
            {
                var p = DemoProcess.Start(label, self, args, runtime, Path.Combine(work, label + ".log"));
                processes.Add(p);
                return p;
            }

            var routerA = Start("router-a", "router", clusterDir, "--site", "a");
            var routerB = Start("router-b", "router", clusterDir, "--site", "b");
            await routerA.WaitForLogAsync("up:", cancellationToken).ConfigureAwait(false);
            await routerB.WaitForLogAsync("up:", cancellationToken).ConfigureAwait(false);
            Step("routers a and b are up (WAN legs: TLS 1.3, mutual authentication with the cluster CA)");

            var nodeA = Start("node-a1", "node", clusterDir, "--site", "a", "--name", "a1");
            var nodeB = Start("node-b1", "node", clusterDir, "--site", "b", "--name", "b1");
            var vipA = (await nodeA.WaitForStdoutAsync(cancellationToken).ConfigureAwait(false)).Split(' ')[1];
            var vipB = (await nodeB.WaitForStdoutAsync(cancellationToken).ConfigureAwait(false)).Split(' ')[1];
            Step($"node a1 enrolled at site a: VIP {vipA}");
            Step($"node b1 enrolled at site b: VIP {vipB}");

            const int port = 8080;
            var server = Start("server-b1", "run", "--node", "b1", "--", python, "-u", "-m", "http.server", "--bind", vipB, port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await server.WaitForStdoutAsync(cancellationToken).ConfigureAwait(false);
            Step($"b1 runs an unmodified 'python3 -m http.server --bind {vipB} {port}'");

            var url = $"http://{vipB}:{port}/";
            var client = Start("client-a1", "run", "--node", "a1", "--", python, "-c",
                "import socket,sys,urllib.request as u\n" +
                $"r=u.urlopen('{url}',timeout=20); body=r.read()\n" +
                "print('status', r.status, 'bytes', len(body))\n" +
                $"s=socket.create_connection(('{vipB}',{port}),timeout=20); print('sockname', s.getsockname()[0], 'peername', s.getpeername()[0]); s.close()");
            var exit = await client.WaitForExitAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            var clientOut = client.Stdout;
            Step($"a1 runs an unmodified python3 client for {url} (exit code {exit}):");
            foreach (var line in clientOut)
            {
                Console.WriteLine($"      {line}");
            }

            var seen = await server.WaitForLogAsync("\"GET / HTTP", cancellationToken).ConfigureAwait(false);
            var clientAddress = ClientAddressRegex().Match(seen).Groups[1].Value;
            Step($"the server at b1 logged the request from {clientAddress}: {(clientAddress == vipA ? "a1's VIP, as on one LAN" : "NOT a1's VIP")}");
            var ok = exit == 0 && clientAddress == vipA && clientOut.Any(l => l.StartsWith("status 200", StringComparison.Ordinal))
                     && clientOut.Any(l => l == $"sockname {vipA} peername {vipB}");
            Console.WriteLine(ok
                ? $"\nDemo passed: a1 ({vipA}) at site a and b1 ({vipB}) at site b talked through routers a and b with no code changes."
                : $"\nDemo FAILED; logs are in {work}");
            if (!ok)
            {
                keep = true;
            }

            return ok ? 0 : 1;
        }
        finally
        {
            foreach (var p in Enumerable.Reverse(processes))
            {
                await p.StopAsync().ConfigureAwait(false);
            }

            if (keep)
            {
                Console.WriteLine($"Kept {work}");
            }
            else
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    private static void Step(string text) => Console.WriteLine($"  • {text}");

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':')
        .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    [GeneratedRegex(@"^(\S+) - - ")]
    private static partial Regex ClientAddressRegex();

    /// <summary>A child process of the demo with its output captured to a log file and in memory.</summary>
    private sealed class DemoProcess
    {
        private readonly Process _process;
        private readonly List<string> _stdout = [];
        private readonly List<string> _log = [];
        private readonly StreamWriter _file;
        private readonly string _label;

        private DemoProcess(string label, Process process, StreamWriter file)
        {
            _label = label;
            _process = process;
            _file = file;
        }

        public IReadOnlyList<string> Stdout
        {
            get
            {
                lock (_stdout)
                {
                    return [.. _stdout];
                }
            }
        }

        public static DemoProcess Start(string label, string file, string[] args, string runtimeDir, string logPath)
        {
            var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }

            info.Environment["ISTHMUS_RUNTIME_DIR"] = runtimeDir;
            var process = Process.Start(info) ?? throw new UserException($"cannot start {file}", 1);
            var demo = new DemoProcess(label, process, new StreamWriter(logPath) { AutoFlush = true });
            process.OutputDataReceived += (_, e) => demo.Add(e.Data, stdout: true);
            process.ErrorDataReceived += (_, e) => demo.Add(e.Data, stdout: false);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return demo;
        }

        private void Add(string? line, bool stdout)
        {
            if (line is null)
            {
                return;
            }

            lock (_stdout)
            {
                (stdout ? _stdout : _log).Add(line);
                _file.WriteLine(line);
                Monitor.PulseAll(_stdout);
            }
        }

        public Task<string> WaitForStdoutAsync(CancellationToken cancellationToken) => WaitAsync(l => true, stdout: true, cancellationToken);

        public Task<string> WaitForLogAsync(string fragment, CancellationToken cancellationToken) =>
            WaitAsync(l => l.Contains(fragment, StringComparison.Ordinal), stdout: false, cancellationToken);

        private async Task<string> WaitAsync(Func<string, bool> match, bool stdout, CancellationToken cancellationToken)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                lock (_stdout)
                {
                    var found = (stdout ? _stdout : _log).FirstOrDefault(match);
                    if (found is not null)
                    {
                        return found;
                    }
                }

                if (_process.HasExited)
                {
                    break;
                }

                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }

            string[] tail;
            lock (_stdout)
            {
                tail = [.. _log.TakeLast(5)];
            }

            throw new UserException($"{_label} did not get ready: {string.Join(" | ", tail)}", 1);
        }

        public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            await _process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            return _process.ExitCode;
        }

        public async Task StopAsync()
        {
            if (!_process.HasExited)
            {
                Core.Native.Libc.Kill(_process.Id, 15);
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await _process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                }
            }

            await _file.DisposeAsync().ConfigureAwait(false);
            _process.Dispose();
        }
    }
}
