using System.Diagnostics.CodeAnalysis;

namespace Isthmus.Core.Config;

/// <summary>The types of value the TOML subset has.</summary>
[SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "These are TOML's own type names.")]
public enum TomlValueKind
{
    /// <summary>A basic (<c>"..."</c>) or literal (<c>'...'</c>) string.</summary>
    String,

    /// <summary>A 64-bit integer.</summary>
    Integer,

    /// <summary><c>true</c> or <c>false</c>.</summary>
    Boolean,

    /// <summary>An array of values.</summary>
    Array,
}
