namespace Isthmus.Core.Relay;

/// <summary>
/// A connection that is not a socket of its own but is carried inside another connection (a virtual stream of
/// a WAN trunk): it can still half-close and reset, and the carrier watches its liveness, so a relay leg over
/// it needs no keepalive or dead-leg timer of its own.
/// </summary>
public interface ICarriedConnection
{
    /// <summary>Sends our end of stream after everything written, while the other direction keeps working.</summary>
    void ShutdownSend();

    /// <summary>Ends the connection abortively: the peer sees a reset.</summary>
    void Abort();

    /// <summary>Where it leads, for log lines (e.g. "trunk to site b, stream 17").</summary>
    string Description { get; }
}
