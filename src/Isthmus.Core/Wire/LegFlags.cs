namespace Isthmus.Core.Wire;

/// <summary>
/// Flags of a leg header that a program's shim sends on the program's own socket (a LAN leg to the router).
/// The router-to-router flags are <see cref="Relay.Resumable.ResumableFlags"/>; the two sets do not overlap.
/// </summary>
public static class LegFlags
{
    /// <summary>
    /// The router sends no leg reply: the socket is a non-blocking connect's, whose program may read at any time,
    /// so after the header the connection carries program bytes only. A failure to open the stream resets the
    /// connection, which is what a non-blocking connect through the agent shows too.
    /// </summary>
    public const ushort NoReply = 0x0100;
}
