using System.Globalization;
using Isthmus.Bench.Tools;
using ScottPlot;

namespace Isthmus.Bench.Report;

/// <summary>
/// PNG figures like the seeds' (ScottPlot, rendered headless by SkiaSharp): iperf3 throughput by write size,
/// NetPIPE bandwidth by message size, memcached operations per second, and the headline ratios to native.
/// </summary>
public static class ReportPlots
{
    private static readonly ScottPlot.Palettes.Category20 Palette = new();
    private static readonly MarkerShape[] Shapes = [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.OpenCircle, MarkerShape.OpenSquare];

    public static IReadOnlyList<string> Write(string directory, BenchReport report)
    {
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        void Save(Plot plot, string name)
        {
            var file = Path.Combine(directory, name);
            plot.SavePng(file, 1000, 600);
            files.Add(file);
        }

        Save(Iperf3BySize(report), "iperf3-by-write-size.png");
        if (report.Measurements.Any(m => m.Curve is not null))
        {
            Save(NetPipeCurves(report), "netpipe-bandwidth.png");
        }

        if (report.Cases.Any(c => c.Metrics.Any(m => m.Metric.StartsWith("memcached", StringComparison.Ordinal))))
        {
            Save(Grouped(report, "memcached", "memcached operations per second (median)", "ops/s"), "memcached.png");
        }

        Save(Ratios(report), "ratios.png");
        return files;
    }

    private static Plot Iperf3BySize(BenchReport report)
    {
        var plot = new Plot();
        var sizes = report.Run.Iperf3Sizes;
        foreach (var c in report.Cases)
        {
            var points = sizes.Select((s, i) => (i, c.Metrics.FirstOrDefault(m => m.Metric == Iperf3Tool.Metric(s)))).Where(p => p.Item2 is not null).ToList();
            if (points.Count == 0)
            {
                continue;
            }

            var line = plot.Add.Scatter(points.Select(p => (double)p.i).ToArray(), points.Select(p => p.Item2!.Median).ToArray());
            line.LegendText = c.Case;
            line.MarkerSize = 7;
            line.Color = Palette.GetColor(report.Cases.ToList().IndexOf(c));
            line.MarkerShape = Shapes[report.Cases.ToList().IndexOf(c) % Shapes.Length];
        }

        plot.Axes.Bottom.SetTicks([.. sizes.Select((_, i) => (double)i)], [.. sizes.Select(s => s == "def" ? "default (128 KiB)" : s + " B")]);
        plot.Title("iperf3 throughput by write size (median over rounds)");
        plot.XLabel("iperf3 -l (bytes per write)");
        plot.YLabel("Gbit/s");
        plot.ShowLegend(Alignment.UpperLeft);
        return plot;
    }

    private static Plot NetPipeCurves(BenchReport report)
    {
        var plot = new Plot();
        foreach (var c in report.Cases)
        {
            // The curve of the median round (by small-message RTT) stands for the case.
            var curves = report.Measurements.Where(m => m.Case == c.Case && m.Curve is { Count: > 0 }).OrderBy(m => m.Value).ToList();
            if (curves.Count == 0)
            {
                continue;
            }

            var curve = curves[curves.Count / 2].Curve!;
            var line = plot.Add.Scatter(curve.Select(p => Math.Log10(p.Bytes)).ToArray(), curve.Select(p => p.Gbps).ToArray());
            line.LegendText = c.Case;
            line.MarkerSize = 4;
            line.Color = Palette.GetColor(report.Cases.ToList().IndexOf(c));
            line.MarkerShape = Shapes[report.Cases.ToList().IndexOf(c) % Shapes.Length];
        }

        var ticks = Enumerable.Range(0, 7).Select(e => (double)e).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, [.. ticks.Select(e => Bytes(Math.Pow(10, e)))]);
        plot.Title("NetPIPE (NPtcp) bandwidth by message size");
        plot.XLabel("message size (bytes, log scale)");
        plot.YLabel("Gbit/s");
        plot.ShowLegend(Alignment.UpperLeft);
        return plot;
    }

    private static Plot Grouped(BenchReport report, string prefix, string title, string unit)
    {
        var plot = new Plot();
        var metrics = report.Cases.SelectMany(c => c.Metrics).Select(m => m.Metric).Where(m => m.StartsWith(prefix, StringComparison.Ordinal)).Distinct().ToList();
        var cases = report.Cases.Where(c => c.Metrics.Any(m => metrics.Contains(m.Metric))).ToList();
        var palette = Palette;
        var bars = new List<Bar>();
        for (var j = 0; j < metrics.Count; j++)
        {
            for (var i = 0; i < cases.Count; i++)
            {
                if (cases[i].Metrics.FirstOrDefault(m => m.Metric == metrics[j]) is { } s)
                {
                    bars.Add(new Bar { Position = (j * (cases.Count + 1)) + i, Value = s.Median, FillColor = palette.GetColor(i) });
                }
            }
        }

        plot.Add.Bars(bars);
        for (var i = 0; i < cases.Count; i++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = cases[i].Case, FillColor = palette.GetColor(i) });
        }

        plot.Axes.Bottom.SetTicks([.. metrics.Select((_, j) => (j * (cases.Count + 1)) + ((cases.Count - 1) / 2.0))], [.. metrics]);
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel(unit);
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    private static Plot Ratios(BenchReport report)
    {
        var plot = new Plot();
        var rows = report.Cases.Select(c => (c.Case, c.Metrics.FirstOrDefault(m => m.Metric == Iperf3Tool.Metric("def"))?.Ratio)).Where(r => r.Ratio is not null).ToList();
        var bars = rows.Select((r, i) => new Bar { Position = i, Value = r.Ratio!.Value, Label = r.Ratio!.Value.ToString("0.00", CultureInfo.InvariantCulture) }).ToList();
        var series = plot.Add.Bars(bars);
        series.Horizontal = true;
        series.ValueLabelStyle.FontSize = 14;
        plot.Axes.Left.SetTicks([.. rows.Select((_, i) => (double)i)], [.. rows.Select(r => r.Case)]);
        plot.Add.VerticalLine(1, 1, Colors.Gray);
        plot.Axes.Margins(left: 0);
        plot.Title("iperf3 default writes: throughput as a fraction of native (gw-gw; intra-site: flat LAN)");
        plot.XLabel("ratio to native");
        return plot;
    }

    /// <summary>Tick labels at powers of ten, in decimal units (10 kB, not 9.8 KiB).</summary>
    private static string Bytes(double b) => b >= 1e6 ? $"{b / 1e6:0.#} MB" : b >= 1e3 ? $"{b / 1e3:0.#} kB" : $"{b:0} B";
}
