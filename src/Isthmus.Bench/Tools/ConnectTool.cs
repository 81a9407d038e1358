using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Isthmus.Bench.Tools;

/// <summary>
/// Connection setup: a Python client connects, reads the server's first byte, closes, and again, one at a
/// time, for the run's duration or at most <see cref="MaxConnections"/> connections. Figures: connections per
/// second and the median time from connect() to the first byte. With <c>--parallel N</c> (N &gt; 1) a second run
/// follows with N such client loops in parallel (forked processes, so no interpreter lock serialises them) against
/// a server of N forked accept loops on one listening socket; its figures are the sum of their connections per
/// second and the median over all of their connections. The sequential figures stay the default.
/// </summary>
public sealed class ConnectTool : BenchTool
{
    public const string ToolName = "connect";
    public const string RateMetric = "connect rate";
    public const string FirstByteMetric = "connect first-byte";
    public const string ParallelRateMetric = "connect rate parallel";
    public const string ParallelFirstByteMetric = "connect first-byte parallel";
    public const int MaxConnections = 20000;

    private const string ServerScript = """
        import ctypes, os, signal, socket, sys
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', int(sys.argv[1])))
        s.listen(1024)
        parent = os.getpid()
        for _ in range(int(sys.argv[2]) - 1):
            if os.fork() == 0:
                # The bench stops servers by PID: the forked accept loops end with the first (PR_SET_PDEATHSIG).
                ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
                if os.getppid() != parent:
                    os._exit(0)
                break
        while True:
            c, _ = s.accept()
            try:
                c.sendall(b'x')
            except OSError:
                pass
            c.close()
        """;

    private const string ClientScript = """
        import json, os, socket, sys, time
        host, port, seconds, limit, loops = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

        def run(limit):
            lat, errors, last = [], 0, ''
            start = time.monotonic()
            end = start + seconds
            while len(lat) < limit and time.monotonic() < end and errors < 100:
                t = time.perf_counter()
                try:
                    c = socket.create_connection((host, port), timeout=5)
                    if c.recv(1) != b'x':
                        raise OSError('no first byte')
                    lat.append(time.perf_counter() - t)
                    c.close()
                except OSError as e:
                    errors += 1
                    last = str(e)
            return {'lat': lat, 'seconds': time.monotonic() - start, 'errors': errors, 'last': last}

        if loops == 1:
            results = [run(limit)]
        else:
            # One process per loop; each sends its result back through a pipe.
            children = []
            for _ in range(loops):
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    with os.fdopen(w, 'w') as out:
                        json.dump(run(max(1, limit // loops)), out)
                    os._exit(0)
                os.close(w)
                children.append((pid, r))
            results = []
            for pid, r in children:
                with os.fdopen(r) as f:
                    text = f.read()
                os.waitpid(pid, 0)
                if text:
                    results.append(json.loads(text))
        lat = sorted(x for res in results for x in res['lat'])
        # The loops ran side by side: the sum of their rates.
        rate = sum(len(res['lat']) / res['seconds'] for res in results if res['seconds'] > 0)
        print(json.dumps({'connections': len(lat), 'rate': rate, 'loops': len(results),
                          'errors': sum(res['errors'] for res in results),
                          'last_error': next((res['last'] for res in results if res['last']), ''),
                          'p50_us': lat[len(lat) // 2] * 1e6 if lat else 0}))
        sys.exit(0 if lat else 1)
        """;

    public override string Name => ToolName;

    public override string Description => "connection setup rate (connect, first byte, close; sequential, and with --parallel N also N loops at once)";

    public override IReadOnlyList<string> Requires => ["python3"];

    public override async IAsyncEnumerable<Measurement> RunAsync(ToolRun run, Action<MeasurementError> error, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var serverFile = Path.Combine(run.Work, "connect-server.py");
        var clientFile = Path.Combine(run.Work, "connect-client.py");
        await File.WriteAllTextAsync(serverFile, ServerScript, cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(clientFile, ClientScript, cancellationToken).ConfigureAwait(false);
        var port = ToolPorts.Connect.ToString(CultureInfo.InvariantCulture);
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var loops = run.Settings.Iperf3Flows;
        // One server for both runs: N accept loops serve the sequential client as one loop would.
        var server = run.StartServer("connect", python, serverFile, port, loops.ToString(CultureInfo.InvariantCulture));
        var figures = new List<Measurement>();
        try
        {
            await run.Context.WaitListeningAsync(run.Case.ServerNode, ToolPorts.Connect, server, cancellationToken).ConfigureAwait(false);
            await MeasureAsync(run, python, clientFile, port, 1, RateMetric, FirstByteMetric, figures, error, cancellationToken).ConfigureAwait(false);
            if (loops > 1)
            {
                await MeasureAsync(run, python, clientFile, port, loops, ParallelRateMetric, ParallelFirstByteMetric, figures, error, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await run.Context.StopAsync(server).ConfigureAwait(false);
        }

        foreach (var figure in figures)
        {
            yield return figure;
        }
    }

    /// <summary>One client run of <paramref name="loops"/> loops: its two figures, or an error.</summary>
    private static async Task MeasureAsync(ToolRun run, string python, string clientFile, string port, int loops, string rateMetric, string firstByteMetric,
        List<Measurement> figures, Action<MeasurementError> error, CancellationToken cancellationToken)
    {
        var (output, cpu, wall) = await run.RunClientAsync(python, [clientFile, run.Case.Target, port, run.Settings.Duration.ToString(CultureInfo.InvariantCulture),
            MaxConnections.ToString(CultureInfo.InvariantCulture), loops.ToString(CultureInfo.InvariantCulture)], ClientTimeout(run), cancellationToken).ConfigureAwait(false);
        try
        {
            using var doc = JsonDocument.Parse(output.StandardOutput);
            var root = doc.RootElement;
            var rate = root.GetProperty("rate").GetDouble();
            if (root.GetProperty("connections").GetInt32() > 0 && rate > 0)
            {
                figures.Add(run.Figure(rateMetric, rate, "conn/s", true, 0, cpu, wall));
                figures.Add(run.Figure(firstByteMetric, root.GetProperty("p50_us").GetDouble(), "µs", false, 0, cpu, wall));
                return;
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
        }

        error(new MeasurementError(run.Round, run.Case.Name, ToolName, $"{rateMetric}: connect client ({loops} loops) exit {output.ExitCode}: {Iperf3Tool.Excerpt(output)}"));
    }
}
