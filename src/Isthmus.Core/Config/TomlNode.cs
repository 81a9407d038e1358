namespace Isthmus.Core.Config;

/// <summary>A table or a value of a <see cref="TomlDocument"/>, with where it was written.</summary>
public abstract class TomlNode
{
    private protected TomlNode(string file, int line)
    {
        File = file;
        Line = line;
    }

    /// <summary>The file the node was read from, as the user named it.</summary>
    public string File { get; }

    /// <summary>The 1-based line the node was written on (for a table, its header; 0 for the root and for tables only implied by a header).</summary>
    public int Line { get; internal set; }

    /// <summary>An error about this node, positioned at its line.</summary>
    public ConfigException Error(string reason) => new(File, Line, reason);
}
