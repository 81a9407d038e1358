namespace Isthmus.Core.Relay.Trunks;

/// <summary>The first byte of every trunk frame (see <see cref="TrunkFrame"/>).</summary>
public enum TrunkFrameType : byte
{
    /// <summary>Client → server, empty: a new stream with an id greater than every earlier one.</summary>
    Open = 1,

    /// <summary>1..MaxFrameData bytes of the stream, within the credit the receiver granted.</summary>
    Data = 2,

    /// <summary>u32: the receiver of data grants this many more bytes.</summary>
    Credit = 3,

    /// <summary>Empty: the sender's half-close, after its last Data frame.</summary>
    Fin = 4,

    /// <summary>Empty: abortive close of the stream in both directions.</summary>
    Reset = 5,

    /// <summary>Stream 0, 8 bytes: keepalive; answered by a Pong with the same body.</summary>
    Ping = 6,

    /// <summary>Stream 0, 8 bytes: the body of the Ping it answers.</summary>
    Pong = 7,
}
