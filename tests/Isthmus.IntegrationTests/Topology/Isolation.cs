using System.Globalization;
using System.Text;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>One ping of an isolation check.</summary>
public sealed record ReachabilityCheck(string From, string To, string Address, bool ExpectReach, bool Reached, string Detail)
{
    public bool Ok => ExpectReach == Reached;
}

/// <summary>All pings of <see cref="SiteTopology.IsolationCheckAsync"/>.</summary>
public sealed class IsolationReport(IReadOnlyList<ReachabilityCheck> checks)
{
    public IReadOnlyList<ReachabilityCheck> Checks { get; } = checks;

    public bool Ok => Checks.All(c => c.Ok);

    public IEnumerable<ReachabilityCheck> Failures => Checks.Where(c => !c.Ok);

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var c in Checks)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"{(c.Ok ? "ok  " : "BAD ")} {c.From,-6} -> {c.To,-8} {c.Address,-15} {(c.Reached ? "reach" : "fail"),-5} (expect {(c.ExpectReach ? "reach" : "fail")}){(c.Ok ? "" : "  " + c.Detail)}\n");
        }

        return sb.ToString();
    }
}

/// <summary>The topology does not hold its promises (reachability, cleanup).</summary>
public sealed class TopologyException(string message) : Exception(message);
