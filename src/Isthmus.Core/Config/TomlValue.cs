namespace Isthmus.Core.Config;

/// <summary>A value of a <see cref="TomlDocument"/>: its key, its type and where it was written.</summary>
public sealed class TomlValue : TomlNode
{
    private readonly object _value;

    internal TomlValue(string file, int line, string key, TomlValueKind kind, object value) : base(file, line)
    {
        Key = key;
        Kind = kind;
        _value = value;
    }

    /// <summary>The key the value was assigned to (for an array item, the array's key).</summary>
    public string Key { get; }

    /// <summary>The type of the value.</summary>
    public TomlValueKind Kind { get; }

    /// <summary>The string; a <see cref="ConfigException"/> naming the key if the value is not a string.</summary>
    public string AsString() => Kind == TomlValueKind.String ? (string)_value : throw WrongType("a string, in quotes");

    /// <summary>The integer; a <see cref="ConfigException"/> naming the key if the value is not an integer.</summary>
    public long AsInteger() => Kind == TomlValueKind.Integer ? (long)_value : throw WrongType("an integer");

    /// <summary>The boolean; a <see cref="ConfigException"/> naming the key if the value is not true/false.</summary>
    public bool AsBoolean() => Kind == TomlValueKind.Boolean ? (bool)_value : throw WrongType("true or false");

    /// <summary>The items; a <see cref="ConfigException"/> naming the key if the value is not an array.</summary>
    public IReadOnlyList<TomlValue> AsArray() =>
        Kind == TomlValueKind.Array ? (IReadOnlyList<TomlValue>)_value : throw WrongType("an array");

    /// <summary>The items of an array of strings.</summary>
    public IReadOnlyList<string> AsStringArray() => AsArray().Select(v => v.Kind == TomlValueKind.String
        ? v.AsString()
        : throw v.Error($"'{Key}' must be an array of strings")).ToList();

    /// <summary>The value as TOML would write it (strings quoted).</summary>
    public override string ToString() => Kind switch
    {
        TomlValueKind.String => TomlWriter.Quote((string)_value),
        TomlValueKind.Boolean => (bool)_value ? "true" : "false",
        TomlValueKind.Array => "[" + string.Join(", ", AsArray()) + "]",
        _ => Convert.ToString(_value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    private ConfigException WrongType(string expected) => Error($"'{Key}' must be {expected}, not {Describe()}");

    private string Describe() => Kind switch
    {
        TomlValueKind.String => "a string",
        TomlValueKind.Integer => "an integer",
        TomlValueKind.Boolean => "a boolean",
        _ => "an array",
    };
}
