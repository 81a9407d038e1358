namespace Isthmus.Core;

/// <summary>Node names are DNS labels, because they become NODE.SITE.CLUSTER host names.</summary>
public static class NodeNames
{
    /// <summary>Whether <paramref name="name"/> is a DNS label; false for null (a JSON <c>"name": null</c> from a peer).</summary>
    public static bool IsValid([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? name) =>
        name is { Length: > 0 and <= 63 }
        && name[0] != '-' && name[^1] != '-'
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');
}
