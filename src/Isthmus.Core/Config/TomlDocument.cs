namespace Isthmus.Core.Config;

/// <summary>
/// A parsed file in the TOML subset Isthmus uses: comments, <c>[table]</c> and <c>[a.b]</c> headers, bare and
/// quoted keys, basic strings with escapes, literal strings, integers, booleans and arrays. Anything else
/// (floats, dates, multi-line strings, inline tables, arrays of tables, dotted keys) is an error that says
/// so, never a silent misreading. Duplicate keys and tables are errors, as TOML requires.
/// </summary>
public sealed class TomlDocument
{
    private TomlDocument(string file, TomlTable root)
    {
        File = file;
        Root = root;
    }

    /// <summary>The file name used in error messages.</summary>
    public string File { get; }

    /// <summary>The root table: top-level keys, and every table as a sub-table.</summary>
    public TomlTable Root { get; }

    /// <summary>Parses text; <paramref name="file"/> is only used in error messages.</summary>
    /// <exception cref="ConfigException">The text is not in the subset; the message has the line.</exception>
    public static TomlDocument Parse(string text, string file = "(text)")
    {
        ArgumentNullException.ThrowIfNull(text);
        return new TomlDocument(file, new TomlParser(text, file).ParseDocument());
    }

    /// <summary>Reads and parses a file.</summary>
    /// <exception cref="UserException">The file is missing or unreadable.</exception>
    /// <exception cref="ConfigException">The file is not in the subset.</exception>
    public static TomlDocument Load(string path)
    {
        string text;
        try
        {
            text = System.IO.File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UserException($"{path} not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserException($"{path}: cannot read: {e.Message}", e);
        }

        return Parse(text, path);
    }
}
