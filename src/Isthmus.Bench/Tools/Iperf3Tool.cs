using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Isthmus.Bench.Tools;

/// <summary>iperf3 TCP throughput by write size (-l), one flow or <c>--parallel</c> flows (-P, summed), from iperf3's own JSON (bytes received).</summary>
public sealed class Iperf3Tool : BenchTool
{
    public const string ToolName = "iperf3";

    public override string Name => ToolName;

    public override string Description => "iperf3 throughput by write size";

    public override IReadOnlyList<string> Requires => ["iperf3"];

    public static string Metric(string size) => $"iperf3 {size}";

    public override async IAsyncEnumerable<Measurement> RunAsync(ToolRun run, Action<MeasurementError> error, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var port = ToolPorts.Iperf3.ToString(CultureInfo.InvariantCulture);
        var server = run.StartServer("iperf3", "iperf3", "-s", "-p", port);
        try
        {
            await run.Context.WaitListeningAsync(run.Case.ServerNode, ToolPorts.Iperf3, server, cancellationToken).ConfigureAwait(false);
            foreach (var size in run.Settings.Iperf3Sizes)
            {
                var args = new List<string> { "-c", run.Case.Target, "-p", port, "-t", run.Settings.Duration.ToString("0.##", CultureInfo.InvariantCulture), "-J", "--connect-timeout", "10000" };
                if (run.Settings.Iperf3Flows > 1)
                {
                    args.AddRange(["-P", run.Settings.Iperf3Flows.ToString(CultureInfo.InvariantCulture)]);
                }

                if (size != "def")
                {
                    args.AddRange(["-l", size]);
                }

                var (output, cpu, wall) = await run.RunClientAsync("iperf3", args, ClientTimeout(run), cancellationToken).ConfigureAwait(false);
                for (var retry = 0; retry < 5 && output.StandardOutput.Contains("server is busy", StringComparison.Ordinal); retry++)
                {
                    // Through a relay chain the server can finish the previous test after the client did: wait, try again.
                    await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                    (output, cpu, wall) = await run.RunClientAsync("iperf3", args, ClientTimeout(run), cancellationToken).ConfigureAwait(false);
                }

                var figure = Parse(output);
                if (figure is { } f)
                {
                    yield return run.Figure(Metric(size), f.Bits / 1e9, "Gbit/s", true, f.Bytes, cpu, wall);
                }
                else
                {
                    error(new MeasurementError(run.Round, run.Case.Name, Metric(size), $"iperf3 exit {output.ExitCode}: {Excerpt(output)}"));
                }
            }
        }
        finally
        {
            await run.Context.StopAsync(server).ConfigureAwait(false);
        }
    }

    private static (double Bits, long Bytes)? Parse(CommandOutput output)
    {
        try
        {
            using var doc = JsonDocument.Parse(output.StandardOutput);
            var received = doc.RootElement.GetProperty("end").GetProperty("sum_received");
            var bits = received.GetProperty("bits_per_second").GetDouble();
            return bits > 0 ? (bits, (long)received.GetProperty("bytes").GetDouble()) : null;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    internal static string Excerpt(CommandOutput output)
    {
        var text = (output.StandardError + " " + output.StandardOutput).ReplaceLineEndings(" ").Trim();
        return text.Length > 300 ? text[..300] : text;
    }
}
