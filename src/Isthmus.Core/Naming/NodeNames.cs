namespace Isthmus.Core;

/// <summary>Node names are DNS labels, because they become NODE.SITE.CLUSTER host names.</summary>
public static class NodeNames
{
    public static bool IsValid(string name) =>
        name.Length is > 0 and <= 63
        && name[0] != '-' && name[^1] != '-'
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');
}
