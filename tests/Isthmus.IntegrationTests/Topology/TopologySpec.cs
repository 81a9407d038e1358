using System.Text.RegularExpressions;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>One site: a gateway (head node) and <paramref name="Nodes"/> compute nodes.</summary>
/// <param name="Name">Short lowercase name (1..4 of a-z0-9, starting with a letter), e.g. "a".</param>
/// <param name="Nodes">Number of compute nodes, 0..16.</param>
public sealed partial record SiteSpec(string Name, int Nodes)
{
    public const int MaxNodes = 16;

    internal void Validate()
    {
        if (!NamePattern().IsMatch(Name))
        {
            throw new ArgumentException(
                $"site name '{Name}' must be 1..4 characters of a-z0-9 starting with a letter (it goes into interface names)");
        }

        if (Nodes is < 0 or > MaxNodes)
        {
            throw new ArgumentException($"site '{Name}': {Nodes} nodes, expected 0..{MaxNodes}");
        }
    }

    [GeneratedRegex("^[a-z][a-z0-9]{0,3}$")]
    private static partial Regex NamePattern();
}

/// <summary>What <see cref="SiteTopology.CreateAsync"/> builds: sites in order (site index = position).</summary>
public sealed class TopologySpec
{
    public const int MaxSites = 8;

    public TopologySpec(params SiteSpec[] sites)
        : this((IEnumerable<SiteSpec>)sites)
    {
    }

    public TopologySpec(IEnumerable<SiteSpec> sites)
    {
        ArgumentNullException.ThrowIfNull(sites);
        Sites = [.. sites];
    }

    public IReadOnlyList<SiteSpec> Sites { get; }

    /// <summary>Optional tbf rate (tc syntax, e.g. "1gbit") applied to every site's WAN link at creation.</summary>
    public string? WanRate { get; init; }

    /// <summary><paramref name="sites"/> sites named a, b, c, ... with <paramref name="nodesPerSite"/> nodes each.</summary>
    public static TopologySpec Uniform(int sites, int nodesPerSite, string? wanRate = null)
    {
        if (sites is < 1 or > MaxSites)
        {
            throw new ArgumentOutOfRangeException(nameof(sites), sites, $"expected 1..{MaxSites}");
        }

        return new TopologySpec(Enumerable.Range(0, sites).Select(i => new SiteSpec(((char)('a' + i)).ToString(), nodesPerSite)))
        {
            WanRate = wanRate,
        };
    }

    internal void Validate()
    {
        if (Sites.Count is < 1 or > MaxSites)
        {
            throw new ArgumentException($"{Sites.Count} sites, expected 1..{MaxSites}");
        }

        foreach (var site in Sites)
        {
            site.Validate();
        }

        var duplicate = Sites.GroupBy(s => s.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"site name '{duplicate.Key}' used twice");
        }
    }
}
