namespace Isthmus.Core.Wire;

/// <summary>A peer sent bytes that break the protocol; the connection is closed and logged, nothing else is affected.</summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException(string message) : base(message)
    {
    }

    public ProtocolException()
    {
    }

    public ProtocolException(string message, Exception inner) : base(message, inner)
    {
    }
}
