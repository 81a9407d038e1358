namespace Isthmus.Core.Relay.Resumable;

/// <summary>Where a stream's next read from its program may go (<see cref="OutboundBuffer.RoomNow"/>).</summary>
public enum ReadRoom
{
    /// <summary>Nowhere: the program is flow-controlled.</summary>
    None,

    Memory,

    /// <summary>The router's spool; a whole read (<see cref="StreamRelay.BufferSize"/>) of it is reserved.</summary>
    Spool,
}
