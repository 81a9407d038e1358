using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Isthmus.Bench.Tools;

/// <summary>
/// Connection setup: a Python client connects, reads the server's first byte, closes, and again, one at a
/// time, for the run's duration or at most <see cref="MaxConnections"/> connections. Figures: connections per
/// second and the median time from connect() to the first byte.
/// </summary>
public sealed class ConnectTool : BenchTool
{
    public const string ToolName = "connect";
    public const string RateMetric = "connect rate";
    public const string FirstByteMetric = "connect first-byte";
    public const int MaxConnections = 20000;

    private const string ServerScript = """
        import socket, sys
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', int(sys.argv[1])))
        s.listen(1024)
        while True:
            c, _ = s.accept()
            try:
                c.sendall(b'x')
            except OSError:
                pass
            c.close()
        """;

    private const string ClientScript = """
        import json, socket, sys, time
        host, port, seconds, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
        lat, errors = [], 0
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
        elapsed = time.monotonic() - start
        lat.sort()
        print(json.dumps({'connections': len(lat), 'seconds': elapsed, 'errors': errors,
                          'p50_us': lat[len(lat) // 2] * 1e6 if lat else 0}))
        sys.exit(0 if lat else 1)
        """;

    public override string Name => ToolName;

    public override string Description => "connection setup rate (connect, first byte, close; sequential)";

    public override IReadOnlyList<string> Requires => ["python3"];

    public override async IAsyncEnumerable<Measurement> RunAsync(ToolRun run, Action<MeasurementError> error, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var serverFile = Path.Combine(run.Work, "connect-server.py");
        var clientFile = Path.Combine(run.Work, "connect-client.py");
        await File.WriteAllTextAsync(serverFile, ServerScript, cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(clientFile, ClientScript, cancellationToken).ConfigureAwait(false);
        var port = ToolPorts.Connect.ToString(CultureInfo.InvariantCulture);
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var server = run.StartServer("connect", python, serverFile, port);
        (double Rate, double P50)? figure = null;
        string failure = "";
        double cpu = 0, wall = 0;
        try
        {
            await run.Context.WaitListeningAsync(run.Case.ServerNode, ToolPorts.Connect, server, cancellationToken).ConfigureAwait(false);
            var (output, c, w) = await run.RunClientAsync(python, [clientFile, run.Case.Target, port, run.Settings.Duration.ToString(CultureInfo.InvariantCulture),
                MaxConnections.ToString(CultureInfo.InvariantCulture)], ClientTimeout(run), cancellationToken).ConfigureAwait(false);
            (cpu, wall) = (c, w);
            try
            {
                using var doc = JsonDocument.Parse(output.StandardOutput);
                var root = doc.RootElement;
                var n = root.GetProperty("connections").GetInt32();
                var seconds = root.GetProperty("seconds").GetDouble();
                if (n > 0 && seconds > 0)
                {
                    figure = (n / seconds, root.GetProperty("p50_us").GetDouble());
                }
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
            }

            failure = $"connect client exit {output.ExitCode}: {Iperf3Tool.Excerpt(output)}";
        }
        finally
        {
            await run.Context.StopAsync(server).ConfigureAwait(false);
        }

        if (figure is not { } f)
        {
            error(new MeasurementError(run.Round, run.Case.Name, ToolName, failure));
            yield break;
        }

        yield return run.Figure(RateMetric, f.Rate, "conn/s", true, 0, cpu, wall);
        yield return run.Figure(FirstByteMetric, f.P50, "µs", false, 0, cpu, wall);
    }
}
