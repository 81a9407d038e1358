using Isthmus.Core.Config;

namespace Isthmus.Core.Domains;

/// <summary>
/// How a domain (or a revocation) names nodes: <c>"*"</c> is every node, including nodes that enrol later;
/// <c>NODE</c> is that name at any site (names are per site, so one name may exist at several);
/// <c>NODE.SITE</c> is the node of that name at that site only.
/// </summary>
public static class DomainMember
{
    public const string Everyone = "*";

    public const string Rule = "'*' (every node), NODE, or NODE.SITE (a-z, 0-9, '-')";

    public static bool IsValid(string? member)
    {
        if (member == Everyone)
        {
            return true;
        }

        if (member is null)
        {
            return false;
        }

        var dot = member.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? DnsLabel.IsValid(member) : DnsLabel.IsValid(member[..dot]) && DnsLabel.IsValid(member[(dot + 1)..]);
    }

    /// <summary>The site part of a <c>NODE.SITE</c> member, or null.</summary>
    public static string? SiteOf(string member)
    {
        var dot = member.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? null : member[(dot + 1)..];
    }

    public static bool Matches(string member, NodeRef node)
    {
        if (member == Everyone)
        {
            return true;
        }

        if (node.Name is null)
        {
            return false;
        }

        var dot = member.IndexOf('.', StringComparison.Ordinal);
        return dot < 0
            ? string.Equals(member, node.Name, StringComparison.Ordinal)
            : member.AsSpan(0, dot).SequenceEqual(node.Name) && member.AsSpan(dot + 1).SequenceEqual(node.Site);
    }
}
