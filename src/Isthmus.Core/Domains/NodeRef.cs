namespace Isthmus.Core.Domains;

/// <summary>
/// A node as a router knows it when it checks a connection: its name and site, or neither when no directory
/// entry holds the VIP yet (a node whose binding has not reached this router). Only domains that hold every
/// node (<c>"*"</c>) admit an unknown node.
/// </summary>
public readonly record struct NodeRef(string? Name, string? Site)
{
    public static NodeRef Unknown => default;

    public bool IsKnown => Name is not null;

    public override string ToString() => Name is null ? "(unknown node)" : Site is null ? Name : $"{Name}.{Site}";
}
