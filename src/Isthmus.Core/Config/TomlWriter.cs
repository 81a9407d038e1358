using System.Globalization;
using System.Text;

namespace Isthmus.Core.Config;

/// <summary>
/// Writes the TOML subset that <see cref="TomlDocument"/> reads: comments, table headers and
/// <c>key = value</c> lines. It writes in the order it is called; it does not check for duplicates.
/// </summary>
public sealed class TomlWriter
{
    private readonly StringBuilder _text = new();

    /// <summary>Writes <c># text</c>, one comment line per line of <paramref name="text"/>.</summary>
    public TomlWriter Comment(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            _text.Append(line.Length == 0 ? "#" : "# " + line).Append('\n');
        }

        return this;
    }

    /// <summary>Writes an empty line.</summary>
    public TomlWriter BlankLine()
    {
        _text.Append('\n');
        return this;
    }

    /// <summary>Writes a table header, <c>[a.b]</c>, quoting the parts that need it.</summary>
    public TomlWriter Table(params string[] path)
    {
        _text.Append('[').Append(string.Join('.', path.Select(FormatKey))).Append("]\n");
        return this;
    }

    /// <summary>Writes <c>key = "value"</c>.</summary>
    public TomlWriter Value(string key, string value) => Line(key, Quote(value));

    /// <summary>Writes <c>key = 123</c>.</summary>
    public TomlWriter Value(string key, long value) => Line(key, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>Writes <c>key = true</c> or <c>false</c>.</summary>
    public TomlWriter Value(string key, bool value) => Line(key, value ? "true" : "false");

    /// <summary>Writes <c>key = ["a", "b"]</c>.</summary>
    public TomlWriter Value(string key, IEnumerable<string> values) =>
        Line(key, "[" + string.Join(", ", values.Select(Quote)) + "]");

    /// <summary>The text written so far.</summary>
    public override string ToString() => _text.ToString();

    /// <summary>A key as TOML needs it written: bare if it can be, else a quoted string.</summary>
    public static string FormatKey(string key) =>
        key.Length > 0 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-') ? key : Quote(key);

    /// <summary>A basic string with the escapes TOML requires.</summary>
    public static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            _ = c switch
            {
                '"' => sb.Append("\\\""),
                '\\' => sb.Append("\\\\"),
                '\b' => sb.Append("\\b"),
                '\t' => sb.Append("\\t"),
                '\n' => sb.Append("\\n"),
                '\f' => sb.Append("\\f"),
                '\r' => sb.Append("\\r"),
                _ when char.IsControl(c) => sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"),
                _ => sb.Append(c),
            };
        }

        return sb.Append('"').ToString();
    }

    private TomlWriter Line(string key, string value)
    {
        _text.Append(FormatKey(key)).Append(" = ").Append(value).Append('\n');
        return this;
    }
}
