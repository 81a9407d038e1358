namespace Isthmus.Bench;

/// <summary>A step of the bench failed (a command, a peer that would not start); the message says which and why.</summary>
public sealed class BenchException : Exception
{
    public BenchException(string message) : base(message)
    {
    }

    public BenchException(string message, Exception inner) : base(message, inner)
    {
    }

    public BenchException()
    {
    }
}
