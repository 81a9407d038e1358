using System.Diagnostics.CodeAnalysis;

namespace Isthmus.Core.Config;

/// <summary>A table of a <see cref="TomlDocument"/>: its keys in file order, each a value or a sub-table.</summary>
public sealed class TomlTable : TomlNode
{
    private readonly OrderedDictionary<string, TomlNode> _entries = new(StringComparer.Ordinal);

    internal TomlTable(string file, int line, string name) : base(file, line) => Name = name;

    /// <summary>The table's dotted name as a header would write it (<c>sites.a</c>); empty for the root table.</summary>
    public string Name { get; }

    /// <summary>The keys in the order they were written.</summary>
    public IEnumerable<string> Keys => _entries.Keys;

    /// <summary>The entries (values and sub-tables) in the order they were written.</summary>
    public IEnumerable<KeyValuePair<string, TomlNode>> Entries => _entries;

    /// <summary>The values of this table (not its sub-tables), in file order.</summary>
    public IEnumerable<TomlValue> Values => _entries.Values.OfType<TomlValue>();

    /// <summary>The sub-tables of this table, in file order.</summary>
    public IEnumerable<KeyValuePair<string, TomlTable>> Tables =>
        _entries.Where(e => e.Value is TomlTable).Select(e => KeyValuePair.Create(e.Key, (TomlTable)e.Value));

    /// <summary>Whether a header named this table (rather than only a deeper one, like <c>[a.b]</c> implies <c>a</c>).</summary>
    internal bool IsExplicit { get; set; }

    /// <summary>The entry for <paramref name="key"/>, if any.</summary>
    public bool TryGet(string key, [NotNullWhen(true)] out TomlNode? node) => _entries.TryGetValue(key, out node);

    /// <summary>The value for <paramref name="key"/>, or null if absent; a <see cref="ConfigException"/> if it is a table.</summary>
    public TomlValue? GetValue(string key) => _entries.TryGetValue(key, out var node)
        ? node as TomlValue ?? throw node.Error($"'{key}' must be a value, not a table")
        : null;

    /// <summary>The sub-table for <paramref name="key"/>, or null if absent; a <see cref="ConfigException"/> if it is a value.</summary>
    public TomlTable? GetTable(string key) => _entries.TryGetValue(key, out var node)
        ? node as TomlTable ?? throw node.Error($"'{key}' must be a table, not a value")
        : null;

    internal void Add(string key, TomlNode node) => _entries.Add(key, node);
}
