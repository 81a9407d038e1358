using System.Diagnostics.CodeAnalysis;

namespace Isthmus.Core.Config;

/// <summary>
/// Cluster, site and node names are DNS labels in lower case: 1..63 of <c>[a-z0-9-]</c>, not starting or ending
/// with '-'. They become parts of certificate names (<c>router.SITE.CLUSTER</c>) and file names, so nothing
/// else is safe.
/// </summary>
public static class DnsLabel
{
    /// <summary>What a valid name looks like, for error messages.</summary>
    public const string Rule = "1..63 characters of a-z, 0-9 and '-', not starting or ending with '-'";

    /// <summary>Whether <paramref name="name"/> is a lower-case DNS label.</summary>
    public static bool IsValid([NotNullWhen(true)] string? name) =>
        name is { Length: >= 1 and <= 63 } && name[0] != '-' && name[^1] != '-'
        && name.All(c => char.IsAsciiDigit(c) || char.IsAsciiLetterLower(c) || c == '-');

    /// <summary>Throws a <see cref="UserException"/> unless <paramref name="name"/> is valid.</summary>
    /// <param name="what">What the name names, for the message ("site name").</param>
    /// <param name="name">The name to check.</param>
    public static void Check(string what, string? name)
    {
        if (!IsValid(name))
        {
            throw new UserException($"{what} '{name}' is not allowed: use {Rule}");
        }
    }
}
