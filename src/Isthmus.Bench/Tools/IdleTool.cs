using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Isthmus.Bench.Tools;

/// <summary>
/// Scale of idle connections: a Python client opens <see cref="BenchSettings.IdleConnections"/> connections to
/// an echo server, one at a time, checks each with a one-byte echo, and keeps them all open while the bench
/// reads the relays' memory from /proc. Figures: the relays' proportional memory with every connection open,
/// the bytes each idle connection added to it, and (Isthmus) the larger router's resident set. A case whose
/// relay forks a process per connection (socat) is left out: its cost per connection is a process.
/// </summary>
public sealed class IdleTool : BenchTool
{
    public const string ToolName = "idle";
    public const string RelayMemoryMetric = "idle relay memory";
    public const string PerConnectionMetric = "idle bytes/conn";
    public const string RouterResidentMetric = "idle router RSS";

    /// <summary>Time for the relays to settle (finish handshakes, free burst buffers) before memory is read.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);

    private const string ServerScript = """
        import selectors, socket, sys
        sel = selectors.DefaultSelector()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', int(sys.argv[1])))
        s.listen(4096)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fileobj is s:
                    try:
                        c, _ = s.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ)
                    continue
                c = key.fileobj
                try:
                    data = c.recv(4096)
                except OSError:
                    data = b''
                if data:
                    try:
                        c.send(data)
                        continue
                    except OSError:
                        pass
                sel.unregister(c)
                c.close()
        """;

    private const string ClientScript = """
        import json, os, socket, sys, time
        host, port, count, release, limit, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
        conns, errors, last = [], 0, ''
        start = time.monotonic()
        while len(conns) < count and errors < 20 and time.monotonic() - start < limit:
            try:
                conns.append(socket.create_connection((host, port), timeout=10))
            except OSError as e:
                errors += 1
                last = str(e)
        opened = time.monotonic() - start
        ok = 0
        for c in conns:
            try:
                c.sendall(b'x')
                if c.recv(1) == b'x':
                    ok += 1
            except OSError as e:
                last = str(e)
        print(json.dumps({'open': len(conns), 'echoed': ok, 'seconds': opened, 'errors': errors, 'last': last}), flush=True)
        deadline = time.monotonic() + hold
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.1)
        """;

    public override string Name => ToolName;

    public override string Description => "idle connections: relay memory per open idle connection";

    public override IReadOnlyList<string> Requires => ["python3"];

    public override async IAsyncEnumerable<Measurement> RunAsync(ToolRun run, Action<MeasurementError> error, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var relays = run.Case.RelayPids.ToList();
        if (run.Case.ForksPerConnection || relays.Count == 0)
        {
            // Natives have no relay to weigh; a forking relay's cost per connection is a whole process.
            yield break;
        }

        var count = run.Settings.IdleConnections;
        var serverFile = Path.Combine(run.Work, "idle-server.py");
        var clientFile = Path.Combine(run.Work, "idle-client.py");
        var release = Path.Combine(run.Work, $"idle-release-{run.Round}-{run.Case.Name}");
        await File.WriteAllTextAsync(serverFile, ServerScript, cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(clientFile, ClientScript, cancellationToken).ConfigureAwait(false);
        var port = ToolPorts.Idle.ToString(CultureInfo.InvariantCulture);
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        // Opening is sequential: allow 20 ms per connection (Isthmus opens 400/s, per-leg TLS 120/s) plus a minute.
        var limit = TimeSpan.FromSeconds(60 + count / 50.0);
        var server = run.StartServer("idle", python, serverFile, port);
        BenchProcess? client = null;
        (long Relay, long PerConnection, long Router)? figure = null;
        var failure = "";
        double cpu = 0, wall = 0;
        try
        {
            await run.Context.WaitListeningAsync(run.Case.ServerNode, ToolPorts.Idle, server, cancellationToken).ConfigureAwait(false);
            var before = ProcessMemory.TreePssBytes(relays);
            var cpu0 = ProcessCpu.TreeSeconds(relays);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            client = run.StartClient("idle-client", python, [clientFile, run.Case.Target, port, count.ToString(CultureInfo.InvariantCulture), release,
                limit.TotalSeconds.ToString(CultureInfo.InvariantCulture), (30 + run.Settings.IdleHold).ToString(CultureInfo.InvariantCulture)]);
            var line = await client.WaitForLineAsync(l => l.StartsWith('{'), limit + TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            (cpu, wall) = (ProcessCpu.TreeSeconds(relays) - cpu0, clock.Elapsed.TotalSeconds);
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var open = root.GetProperty("open").GetInt32();
            var echoed = root.GetProperty("echoed").GetInt32();
            if (open == count && echoed == count)
            {
                await Task.Delay(Settle, cancellationToken).ConfigureAwait(false);
                var after = ProcessMemory.TreePssBytes(relays);
                var router = run.Case.RouterPids.Select(ProcessMemory.ResidentBytes).DefaultIfEmpty(0).Max();
                figure = (after, (after - before) / count, router);
                if (run.Settings.IdleHold > 0)
                {
                    run.Context.Log($"{run.Case.Name}: holding {count} idle connections for {run.Settings.IdleHold} s (routers: {string.Join(", ", run.Case.RouterPids)})");
                    await Task.Delay(TimeSpan.FromSeconds(run.Settings.IdleHold), cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                failure = $"{open} of {count} connections opened, {echoed} echoed ({root.GetProperty("errors").GetInt32()} errors, last: {root.GetProperty("last").GetString()})";
            }
        }
        finally
        {
            await File.WriteAllTextAsync(release, "", CancellationToken.None).ConfigureAwait(false);
            await run.Context.StopAsync(client).ConfigureAwait(false);
            await run.Context.StopAsync(server).ConfigureAwait(false);
        }

        if (figure is not { } f)
        {
            error(new MeasurementError(run.Round, run.Case.Name, ToolName, failure));
            yield break;
        }

        const double MiB = 1024 * 1024;
        yield return run.Figure(RelayMemoryMetric, f.Relay / MiB, "MiB", false, 0, cpu, wall);
        yield return run.Figure(PerConnectionMetric, f.PerConnection, "B", false, 0, cpu, wall);
        if (f.Router > 0)
        {
            yield return run.Figure(RouterResidentMetric, f.Router / MiB, "MiB", false, 0, cpu, wall);
        }
    }
}
