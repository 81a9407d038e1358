using Isthmus.Bench.Cases;

namespace Isthmus.Bench.Report;

/// <summary>Medians over rounds, min/max, ratios to each case's native reference, relay CPU per GiB.</summary>
public static class Summarizer
{
    private const double GiB = 1024.0 * 1024 * 1024;

    public static IReadOnlyList<CaseSummary> Summarize(IReadOnlyList<BenchCase> cases, IReadOnlyList<Measurement> measurements)
    {
        var byCase = measurements.GroupBy(m => m.Case).ToDictionary(g => g.Key, g => g.ToList());
        var medians = measurements.GroupBy(m => (m.Case, m.Metric)).ToDictionary(g => g.Key, g => Stats.Median(g.Select(m => m.Value).ToList()));
        var result = new List<CaseSummary>();
        foreach (var c in cases)
        {
            var metrics = new List<MetricSummary>();
            foreach (var g in (byCase.GetValueOrDefault(c.Name) ?? []).GroupBy(m => m.Metric))
            {
                var values = g.Select(m => m.Value).ToList();
                var median = Stats.Median(values);
                double? ratio = c.Reference is { } r && medians.TryGetValue((r, g.Key), out var reference) && reference > 0 ? median / reference : null;
                var perGiB = c.RelayPids is not null && c is not NativeCase
                    ? g.Where(m => m.Bytes > 0).Select(m => m.RelayCpuSeconds / (m.Bytes / GiB)).ToList()
                    : [];
                metrics.Add(new MetricSummary(g.Key, g.First().Unit, g.First().HigherIsBetter, median, values.Min(), values.Max(), values.Count,
                    ratio, perGiB.Count > 0 ? Stats.Median(perGiB) : null, values));
            }

            result.Add(new CaseSummary(c.Name, c.Description, c.Reference, metrics));
        }

        return result;
    }
}
