namespace Isthmus.Core;

/// <summary>
/// A failure caused by what the user gave us (arguments, files, environment). Its message is one line that
/// says what is wrong and, where possible, what to do; the CLI prints it without a stack trace.
/// </summary>
public class UserException : Exception
{
    public UserException(string message, int exitCode = 2) : base(message) => ExitCode = exitCode;

    public UserException(string message, Exception inner, int exitCode = 2) : base(message, inner) => ExitCode = exitCode;

    public UserException() : this("invalid input")
    {
    }

    public UserException(string message) : this(message, 2)
    {
    }

    public UserException(string message, Exception inner) : this(message, inner, 2)
    {
    }

    public int ExitCode { get; }
}
