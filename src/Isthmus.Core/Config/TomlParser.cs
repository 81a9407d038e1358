using System.Globalization;
using System.Text;

namespace Isthmus.Core.Config;

/// <summary>
/// The character-level parser behind <see cref="TomlDocument"/>. It walks the whole text (not line by line)
/// because arrays may span lines; <see cref="_line"/> follows every newline so errors point at the line.
/// </summary>
internal sealed class TomlParser
{
    private static readonly System.Buffers.SearchValues<char> HexDigits =
        System.Buffers.SearchValues.Create("0123456789abcdefABCDEF");

    /// <summary>
    /// Deepest array nesting accepted. Parsing recurses per level, and a stack overflow cannot be caught: a line
    /// of 50,000 '[' ended the process before this limit (found by fuzzing). Isthmus files nest at most once.
    /// </summary>
    public const int MaxArrayDepth = 32;

    private const string ValueHint = "a \"string\", an integer, true, false or an [array]";

    private readonly string _text;
    private readonly string _file;
    private int _pos;
    private int _line = 1;
    private int _arrayDepth;

    public TomlParser(string text, string file)
    {
        _text = text;
        _file = file;
    }

    private bool AtEnd => _pos >= _text.Length;

    private char Current => _text[_pos];

    public TomlTable ParseDocument()
    {
        var root = new TomlTable(_file, 0, "") { IsExplicit = true };
        var current = root;
        // A UTF-8 BOM is legal at the start of a TOML file; File.ReadAllText keeps it for us to drop.
        if (!AtEnd && Current == '\uFEFF')
        {
            _pos++;
        }

        while (true)
        {
            SkipBlankLines();
            if (AtEnd)
            {
                return root;
            }

            if (Current == '[')
            {
                current = ParseHeader(root);
            }
            else
            {
                ParseKeyValue(current);
            }

            ExpectEndOfLine();
        }
    }

    private TomlTable ParseHeader(TomlTable root)
    {
        var line = _line;
        _pos++;
        if (!AtEnd && Current == '[')
        {
            throw Error("arrays of tables ([[...]]) are not supported");
        }

        var path = new List<string>();
        while (true)
        {
            SkipSpaces();
            path.Add(ParseKey("table name"));
            SkipSpaces();
            if (AtEnd || Current is '\n' or '\r')
            {
                throw Error("unterminated table header: expected ']'");
            }

            if (Current == ']')
            {
                _pos++;
                break;
            }

            if (Current != '.')
            {
                throw Error($"unexpected '{Current}' in table header: expected '.' or ']'");
            }

            _pos++;
        }

        var table = root;
        for (var i = 0; i < path.Count; i++)
        {
            var name = string.Join('.', path.Take(i + 1).Select(TomlWriter.FormatKey));
            var last = i == path.Count - 1;
            if (table.TryGet(path[i], out var existing))
            {
                if (existing is not TomlTable sub)
                {
                    throw new ConfigException(_file, line,
                        $"[{name}]: '{path[i]}' is already a value (line {existing.Line}), not a table");
                }

                if (last)
                {
                    if (sub.IsExplicit)
                    {
                        throw new ConfigException(_file, line, $"duplicate table [{name}] (first on line {sub.Line})");
                    }

                    sub.IsExplicit = true;
                    sub.Line = line;
                }

                table = sub;
            }
            else
            {
                var sub = new TomlTable(_file, last ? line : 0, name) { IsExplicit = last };
                table.Add(path[i], sub);
                table = sub;
            }
        }

        return table;
    }

    private void ParseKeyValue(TomlTable table)
    {
        var line = _line;
        var key = ParseKey("key");
        SkipSpaces();
        if (!AtEnd && Current == '.')
        {
            throw Error($"dotted keys are not supported: put '{key}' in a [table] header instead");
        }

        if (AtEnd || Current != '=')
        {
            throw Error($"expected '=' after key '{key}'");
        }

        _pos++;
        SkipSpaces();
        var value = ParseValue(key);
        if (table.TryGet(key, out var existing))
        {
            var where = existing.Line > 0 ? $" (first on line {existing.Line})" : "";
            throw new ConfigException(_file, line, existing is TomlTable
                ? $"duplicate key '{key}': it is already a table{where}"
                : $"duplicate key '{key}'{where}");
        }

        table.Add(key, value);
    }

    private string ParseKey(string what)
    {
        if (AtEnd || Current is '\n' or '\r')
        {
            throw Error($"missing {what}");
        }

        if (Current == '"')
        {
            return ParseBasicString();
        }

        if (Current == '\'')
        {
            return ParseLiteralString();
        }

        var start = _pos;
        while (!AtEnd && (char.IsAsciiLetterOrDigit(Current) || Current is '_' or '-'))
        {
            _pos++;
        }

        if (_pos == start)
        {
            throw Error($"'{Current}' cannot start a {what}: bare {what}s are letters, digits, '_' and '-', or quote it");
        }

        return _text[start.._pos];
    }

    private TomlValue ParseValue(string key)
    {
        var line = _line;
        if (AtEnd || Current is '\n' or '\r' or '#')
        {
            throw Error($"missing value for '{key}': expected {ValueHint}");
        }

        switch (Current)
        {
            case '"':
                return new TomlValue(_file, line, key, TomlValueKind.String, ParseBasicString());
            case '\'':
                return new TomlValue(_file, line, key, TomlValueKind.String, ParseLiteralString());
            case '[':
                return ParseArray(key);
            case '{':
                throw Error("inline tables ({...}) are not supported: use a [table] header");
            default:
                break;
        }

        var start = _pos;
        while (!AtEnd && !char.IsWhiteSpace(Current) && Current is not (',' or ']' or '#'))
        {
            _pos++;
        }

        var token = _text[start.._pos];
        if (token.Length == 0)
        {
            throw Error($"unexpected '{Current}': expected {ValueHint}");
        }

        if (token is "true" or "false")
        {
            return new TomlValue(_file, line, key, TomlValueKind.Boolean, token == "true");
        }

        if (char.IsAsciiDigit(token[0]) || token[0] is '+' or '-')
        {
            return new TomlValue(_file, line, key, TomlValueKind.Integer, ParseInteger(token));
        }

        if (token.TrimStart('+', '-') is "inf" or "nan")
        {
            throw Error("floats are not supported");
        }

        throw Error($"'{token}' is not a value: expected {ValueHint} (strings must be quoted)");
    }

    private long ParseInteger(string token)
    {
        // Dates (1979-05-27, 07:32:00) and floats (1.5, 1e6) start like integers; name them so that the
        // error says what is unsupported rather than "bad integer".
        if (token.Length >= 3 && char.IsAsciiDigit(token[0]) && (token.Contains(':', StringComparison.Ordinal)
            || (token.Length >= 5 && token[4] == '-' && token[..4].All(char.IsAsciiDigit))))
        {
            throw Error("dates and times are not supported");
        }

        var isPrefixed = token.Length > 2 && token[0] == '0' && token[1] is 'x' or 'o' or 'b';
        if (!isPrefixed && (token.Contains('.', StringComparison.Ordinal) || token.Contains('e', StringComparison.OrdinalIgnoreCase)))
        {
            throw Error("floats are not supported");
        }

        var radix = 10;
        var digits = token;
        var negative = false;
        if (isPrefixed)
        {
            radix = token[1] switch { 'x' => 16, 'o' => 8, _ => 2 };
            digits = token[2..];
        }
        else if (token[0] is '+' or '-')
        {
            negative = token[0] == '-';
            digits = token[1..];
        }

        if (digits.Length == 0 || digits[0] == '_' || digits[^1] == '_' || digits.Contains("__", StringComparison.Ordinal))
        {
            throw Error($"'{token}' is not an integer (an '_' must be between two digits)");
        }

        digits = digits.Replace("_", "", StringComparison.Ordinal);
        if (radix == 10 && digits.Length > 1 && digits[0] == '0')
        {
            throw Error($"'{token}' is not an integer: leading zeros are not allowed");
        }

        ulong magnitude = 0;
        foreach (var c in digits)
        {
            var d = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiHexDigit(c) ? char.ToLowerInvariant(c) - 'a' + 10 : radix;
            if (d >= radix)
            {
                throw Error($"'{token}' is not an integer");
            }

            if (magnitude > (ulong.MaxValue - (ulong)d) / (ulong)radix)
            {
                throw Error($"'{token}' is out of range for a 64-bit integer");
            }

            magnitude = magnitude * (ulong)radix + (ulong)d;
        }

        if (negative ? magnitude > (ulong)long.MaxValue + 1 : magnitude > long.MaxValue)
        {
            throw Error($"'{token}' is out of range for a 64-bit integer");
        }

        return negative ? (long)(0 - magnitude) : (long)magnitude;
    }

    private TomlValue ParseArray(string key)
    {
        var line = _line;
        if (++_arrayDepth > MaxArrayDepth)
        {
            throw Error($"arrays nested deeper than {MaxArrayDepth} levels");
        }

        try
        {
            return ParseArrayItems(key, line);
        }
        finally
        {
            _arrayDepth--;
        }
    }

    private TomlValue ParseArrayItems(string key, int line)
    {
        _pos++;
        var items = new List<TomlValue>();
        while (true)
        {
            SkipArraySpace(line);
            if (Current == ']')
            {
                _pos++;
                return new TomlValue(_file, line, key, TomlValueKind.Array, items);
            }

            items.Add(ParseValue(key));
            SkipArraySpace(line);
            if (Current == ',')
            {
                _pos++;
            }
            else if (Current != ']')
            {
                throw Error($"unexpected '{Current}' in array: expected ',' or ']'");
            }
        }
    }

    // Inside an array, newlines and comments are whitespace.
    private void SkipArraySpace(int arrayLine)
    {
        while (true)
        {
            SkipSpaces();
            if (AtEnd)
            {
                throw new ConfigException(_file, arrayLine, "unterminated array: expected ']'");
            }

            if (Current == '#')
            {
                SkipComment();
            }
            else if (Current is '\n' or '\r')
            {
                SkipNewline();
            }
            else
            {
                return;
            }
        }
    }

    private string ParseBasicString()
    {
        if (_text.AsSpan(_pos).StartsWith("\"\"\""))
        {
            throw Error("multi-line strings (\"\"\") are not supported");
        }

        _pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (AtEnd || Current is '\n' or '\r')
            {
                throw Error("unterminated string: expected '\"' before the end of the line");
            }

            var c = Current;
            _pos++;
            if (c == '"')
            {
                return sb.ToString();
            }

            if (c == '\\')
            {
                sb.Append(ParseEscape());
            }
            else if (char.IsControl(c) && c != '\t')
            {
                throw Error($"control character U+{(int)c:X4} in a string: write it as an escape");
            }
            else
            {
                sb.Append(c);
            }
        }
    }

    private string ParseEscape()
    {
        if (AtEnd || Current is '\n' or '\r')
        {
            throw Error("unterminated string: expected '\"' before the end of the line");
        }

        var c = Current;
        _pos++;
        switch (c)
        {
            case 'b': return "\b";
            case 't': return "\t";
            case 'n': return "\n";
            case 'f': return "\f";
            case 'r': return "\r";
            case '"': return "\"";
            case '\\': return "\\";
            case 'u':
            case 'U':
                var length = c == 'u' ? 4 : 8;
                if (_pos + length > _text.Length || _text.AsSpan(_pos, length).ContainsAnyExcept(HexDigits)
                    || !uint.TryParse(_text.AsSpan(_pos, length), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var code)
                    || code > 0x10FFFF || code is >= 0xD800 and <= 0xDFFF)
                {
                    throw Error($"bad escape '\\{c}': expected {length} hex digits of a Unicode scalar value");
                }

                _pos += length;
                // uint, not int: "\UFFFFFFFF" parsed as int is -1, which passed the range check and made
                // ConvertFromUtf32 throw ArgumentOutOfRangeException instead of a file:line error (found by fuzzing).
                return char.ConvertFromUtf32((int)code);
            default:
                throw Error($"unknown escape '\\{c}' (use \\\\ for a backslash, or a 'literal string')");
        }
    }

    private string ParseLiteralString()
    {
        if (_text.AsSpan(_pos).StartsWith("'''"))
        {
            throw Error("multi-line strings (''') are not supported");
        }

        _pos++;
        var start = _pos;
        while (true)
        {
            if (AtEnd || Current is '\n' or '\r')
            {
                throw Error("unterminated string: expected ''' before the end of the line");
            }

            if (Current == '\'')
            {
                var value = _text[start.._pos];
                _pos++;
                return value;
            }

            if (char.IsControl(Current) && Current != '\t')
            {
                throw Error($"control character U+{(int)Current:X4} in a string");
            }

            _pos++;
        }
    }

    private void ExpectEndOfLine()
    {
        SkipSpaces();
        if (AtEnd)
        {
            return;
        }

        if (Current == '#')
        {
            SkipComment();
        }

        if (AtEnd)
        {
            return;
        }

        if (Current is not ('\n' or '\r'))
        {
            throw Error($"unexpected '{Current}': expected the end of the line (one key = value per line)");
        }

        SkipNewline();
    }

    private void SkipBlankLines()
    {
        while (true)
        {
            SkipSpaces();
            if (AtEnd)
            {
                return;
            }

            if (Current == '#')
            {
                SkipComment();
            }
            else if (Current is '\n' or '\r')
            {
                SkipNewline();
            }
            else
            {
                return;
            }
        }
    }

    private void SkipSpaces()
    {
        while (!AtEnd && Current is ' ' or '\t')
        {
            _pos++;
        }
    }

    private void SkipComment()
    {
        while (!AtEnd && Current is not ('\n' or '\r'))
        {
            if (char.IsControl(Current) && Current != '\t')
            {
                throw Error($"control character U+{(int)Current:X4} in a comment");
            }

            _pos++;
        }
    }

    private void SkipNewline()
    {
        if (Current == '\r')
        {
            if (_pos + 1 >= _text.Length || _text[_pos + 1] != '\n')
            {
                throw Error("carriage return without a line feed");
            }

            _pos++;
        }

        _pos++;
        _line++;
    }

    private ConfigException Error(string reason) => new(_file, _line, reason);
}
