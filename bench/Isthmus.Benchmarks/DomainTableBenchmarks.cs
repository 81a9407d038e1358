using BenchmarkDotNet.Attributes;
using Isthmus.Core.Domains;

namespace Isthmus.Benchmarks;

/// <summary>
/// The domain check a router adds to every datagram and every new stream (after two directory lookups): the
/// default table (one '*' domain), the acceptance test's two domains, and 64 domains of 64 nodes each with
/// the pair in the last one (the worst case of the linear scan).
/// </summary>
[MemoryDiagnoser]
public class DomainTableBenchmarks
{
    private static readonly NodeRef A1 = new("a1", "a");
    private static readonly NodeRef B1 = new("b1", "b");
    private DomainTable _two = null!;
    private DomainTable _large = null!;

    [GlobalSetup]
    public void Setup()
    {
        _two = new DomainTable(1, [KeyValuePair.Create<string, IEnumerable<string>>("x", ["a1", "b1"]), KeyValuePair.Create<string, IEnumerable<string>>("y", ["a2", "b1"])]);
        _large = new DomainTable(1, Enumerable.Range(0, 64).Select(d => KeyValuePair.Create<string, IEnumerable<string>>(
            $"d{d:00}", d == 63 ? [.. Enumerable.Range(0, 62).Select(n => $"n{n}"), "a1", "b1"] : Enumerable.Range(0, 64).Select(n => $"m{d}x{n}"))));
    }

    [Benchmark(Baseline = true)]
    public bool Default() => DomainTable.Default.Shares(A1, B1);

    [Benchmark]
    public bool TwoDomains() => _two.Shares(A1, B1);

    [Benchmark]
    public bool SixtyFourDomainsWorstCase() => _large.Shares(A1, B1);
}
