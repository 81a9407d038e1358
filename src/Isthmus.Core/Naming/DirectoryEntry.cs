namespace Isthmus.Core.Naming;

/// <summary>One node of the cluster as names see it: its name, its site and its VIP (host order).</summary>
public sealed record DirectoryEntry(string Name, string Site, uint Vip)
{
    /// <summary>The canonical name, <c>NODE.SITE.CLUSTER</c>.</summary>
    public string CanonicalName(string cluster) => $"{Name}.{Site}.{cluster}";
}
