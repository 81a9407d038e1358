namespace Isthmus.Core.Config;

/// <summary>
/// A configuration file is wrong. The message is <c>FILE:LINE: what is wrong</c> (or <c>FILE: what is wrong</c>
/// when no single line is to blame), the form editors and terminals turn into a jump to the line.
/// </summary>
public class ConfigException : UserException
{
    /// <summary>Creates the error for <paramref name="file"/> at <paramref name="line"/> (1-based; 0 for the whole file).</summary>
    public ConfigException(string file, int line, string reason)
        : base(line > 0 ? $"{file}:{line}: {reason}" : $"{file}: {reason}")
    {
        File = file;
        Line = line;
        Reason = reason;
    }

    /// <summary>Creates an error with no file position (prefer the positional constructor).</summary>
    public ConfigException() : this("(config)", 0, "invalid configuration")
    {
    }

    /// <summary>Creates an error with no file position (prefer the positional constructor).</summary>
    public ConfigException(string message) : this("(config)", 0, message)
    {
    }

    /// <summary>Creates an error with no file position, keeping the cause.</summary>
    public ConfigException(string message, Exception inner) : base(message, inner)
    {
        File = "(config)";
        Reason = message;
    }

    /// <summary>The file as the user named it.</summary>
    public string File { get; }

    /// <summary>The 1-based line, or 0 when the whole file is to blame.</summary>
    public int Line { get; }

    /// <summary>What is wrong, without the position.</summary>
    public string Reason { get; }
}
