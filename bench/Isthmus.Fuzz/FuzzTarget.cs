using CsCheck;

namespace Isthmus.Fuzz;

/// <summary>
/// One parser under test: how to make its inputs (garbage, valid encodings and mutations of them) and what
/// must hold for every input. <see cref="Check"/> throws only when an invariant breaks: the parser's
/// documented error (e.g. <c>ProtocolException</c>) is caught inside it and counts as a pass.
/// </summary>
/// <param name="Name">Short name for <c>--target</c> and test names.</param>
/// <param name="Input">The input generator.</param>
/// <param name="Check">Feeds one input to the parser and asserts the invariants (round trip, error type).</param>
/// <param name="AllocationBudget">Bytes the check may allocate on its thread for an input of a given length;
/// null where the parser runs on other threads (sockets), so allocation cannot be attributed.</param>
public sealed record FuzzTarget(string Name, Gen<byte[]> Input, Action<byte[]> Check, Func<int, long>? AllocationBudget = null)
{
    public override string ToString() => Name;
}

/// <summary>An invariant broke: the message says which, and the harness prints the input.</summary>
public sealed class FuzzFailureException(string message) : Exception(message)
{
    public FuzzFailureException() : this("fuzz invariant broken")
    {
    }

    public FuzzFailureException(string message, Exception inner) : this(message + ": " + inner.Message)
    {
    }

    public static void Assert(bool condition, string message)
    {
        if (!condition)
        {
            throw new FuzzFailureException(message);
        }
    }
}
