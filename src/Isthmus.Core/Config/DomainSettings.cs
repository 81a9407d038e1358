namespace Isthmus.Core.Config;

/// <summary>
/// One communication domain of the cluster file: <c>[domains]</c> <c>NAME = ["a1", "b1"]</c> (or
/// <c>[domains.NAME]</c> <c>nodes = [...]</c>). Members are <c>"*"</c> (every node), <c>NODE</c> or <c>NODE.SITE</c>.
/// </summary>
public sealed record DomainSettings(string Name, IReadOnlyList<string> Members)
{
    public bool Equals(DomainSettings? other) => other is not null && Name == other.Name && Members.SequenceEqual(other.Members);

    public override int GetHashCode() => HashCode.Combine(Name, Members.Count);
}
