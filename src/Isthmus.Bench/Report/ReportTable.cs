using System.Globalization;
using Isthmus.Bench.Tools;
using Spectre.Console;

namespace Isthmus.Bench.Report;

/// <summary>
/// The terminal tables: each cell is the median over rounds, the ratio to the case's native reference in
/// brackets (the headline), and the spread of the rounds ((max − min) / median).
/// </summary>
public static class ReportTable
{
    public static void Write(IAnsiConsole console, BenchReport report)
    {
        var e = report.Environment;
        console.MarkupLine($"[bold]isthmus bench[/] {Markup.Escape(e.Date)} · kernel {Markup.Escape(e.Kernel)} · {e.Cores} cores ({Markup.Escape(e.Cpu)}) · load {Markup.Escape(e.LoadAverage)} · {Markup.Escape(e.Runtime)}");
        var r = report.Run;
        console.MarkupLine($"{r.Rounds} interleaved round(s), {r.DurationSeconds.ToString("0.##", CultureInfo.InvariantCulture)} s per timed run{(r.Quick ? ", quick" : "")}"
            + $"{(r.WanRate is null ? "" : $", WAN tbf {Markup.Escape(r.WanRate)}")}; cells: median (ratio to native reference) ±spread");

        var throughput = new Table().Title(r.Iperf3Flows > 1 ? $"iperf3 throughput by write size, {r.Iperf3Flows} parallel flows summed, Gbit/s" : "iperf3 throughput by write size, Gbit/s").AddColumn("case").AddColumn("vs");
        foreach (var size in r.Iperf3Sizes)
        {
            throughput.AddColumn(new TableColumn(size == "def" ? "default" : $"-l {size}").RightAligned());
        }

        throughput.AddColumn(new TableColumn("relay CPU-s/GiB").RightAligned());
        foreach (var c in report.Cases)
        {
            var cells = new List<string> { Markup.Escape(c.Case), Markup.Escape(c.Reference ?? "") };
            cells.AddRange(r.Iperf3Sizes.Select(s => Cell(c, Iperf3Tool.Metric(s), "0.00")));
            var def = Find(c, Iperf3Tool.Metric("def"));
            cells.Add(def?.RelayCpuPerGiB is { } g ? g.ToString("0.00", CultureInfo.InvariantCulture) : "–");
            throughput.AddRow(cells.ToArray());
        }

        console.Write(throughput);

        string[] metrics =
        [
            NetPipeTool.RttMetric, NetPipeTool.PeakMetric, MemcachedTool.Metric("get", 1024), MemcachedTool.Metric("set", 1024),
            MemcachedTool.Metric("get", 65536), MemcachedTool.Metric("set", 65536), ConnectTool.RateMetric, ConnectTool.FirstByteMetric,
            ConnectTool.ParallelRateMetric, ConnectTool.ParallelFirstByteMetric,
        ];
        var present = metrics.Where(m => report.Cases.Any(c => Find(c, m) is not null)).ToList();
        if (present.Count > 0)
        {
            var apps = new Table().Title(r.Iperf3Flows > 1
                ? $"NetPIPE round trip (≤ 64 B) and peak bandwidth, memcached (memcaslap), connection setup (sequential; parallel: {r.Iperf3Flows} loops, rates summed)"
                : "NetPIPE round trip (≤ 64 B) and peak bandwidth, memcached (memcaslap), connection setup (sequential)").AddColumn("case");
            foreach (var m in present)
            {
                var unit = report.Cases.Select(c => Find(c, m)).FirstOrDefault(s => s is not null)?.Unit ?? "";
                apps.AddColumn(new TableColumn($"{Markup.Escape(m)}\n{Markup.Escape(unit)}").RightAligned());
            }

            foreach (var c in report.Cases)
            {
                apps.AddRow([Markup.Escape(c.Case), .. present.Select(m => Cell(c, m, m.Contains("memcached", StringComparison.Ordinal) || m.StartsWith("connect", StringComparison.Ordinal) || m == NetPipeTool.RttMetric ? "0" : "0.00"))]);
            }

            console.Write(apps);
        }

        string[] idle = [IdleTool.RelayMemoryMetric, IdleTool.PerConnectionMetric, IdleTool.RouterResidentMetric];
        var idlePresent = idle.Where(m => report.Cases.Any(c => Find(c, m) is not null)).ToList();
        if (idlePresent.Count > 0)
        {
            var table = new Table().Title($"{r.IdleConnections} idle connections held open: relay memory (PSS of the relay processes), bytes per connection, largest router's RSS").AddColumn("case");
            foreach (var m in idlePresent)
            {
                var unit = report.Cases.Select(c => Find(c, m)).FirstOrDefault(s => s is not null)?.Unit ?? "";
                table.AddColumn(new TableColumn($"{Markup.Escape(m)}\n{Markup.Escape(unit)}").RightAligned());
            }

            foreach (var c in report.Cases.Where(c => idlePresent.Any(m => Find(c, m) is not null)))
            {
                table.AddRow([Markup.Escape(c.Case), .. idlePresent.Select(m => Cell(c, m, m == IdleTool.PerConnectionMetric ? "0" : "0.0"))]);
            }

            console.Write(table);
        }

        foreach (var error in report.Errors)
        {
            console.MarkupLine($"[red]failed[/] round {error.Round} {Markup.Escape(error.Case)} {Markup.Escape(error.Tool)}: {Markup.Escape(error.Message)}");
        }

        foreach (var note in report.Notes)
        {
            console.MarkupLine($"[grey]note: {Markup.Escape(note)}[/]");
        }
    }

    private static MetricSummary? Find(CaseSummary c, string metric) => c.Metrics.FirstOrDefault(m => m.Metric == metric);

    private static string Cell(CaseSummary c, string metric, string format)
    {
        if (Find(c, metric) is not { } m)
        {
            return "–";
        }

        var text = m.Median.ToString(format, CultureInfo.InvariantCulture);
        if (m.Ratio is { } ratio)
        {
            text += $" ({ratio.ToString("0.00", CultureInfo.InvariantCulture)})";
        }

        if (m.Count > 1)
        {
            text += $" [grey]±{(100 * m.Spread).ToString("0", CultureInfo.InvariantCulture)}%[/]";
        }

        return text;
    }
}
