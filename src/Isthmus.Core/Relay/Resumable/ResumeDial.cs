namespace Isthmus.Core.Relay.Resumable;

/// <summary>What a re-dial of a broken leg got: a new leg and the peer's receive count, a final refusal, or a failure to retry.</summary>
public sealed record ResumeDial(ResumeDialStatus Status, RelayEndpoint? Leg, long PeerReceived, string Detail)
{
    public static ResumeDial Failed(string detail) => new(ResumeDialStatus.Failed, null, 0, detail);

    public static ResumeDial Refused(string detail) => new(ResumeDialStatus.Refused, null, 0, detail);
}

public enum ResumeDialStatus
{
    /// <summary>The peer took the leg; <see cref="ResumeDial.PeerReceived"/> is what it has of ours.</summary>
    Connected,

    /// <summary>The peer answered that it has no such stream (it restarted, or ended it): final.</summary>
    Refused,

    /// <summary>No answer (link still down, timeout): try again after a delay.</summary>
    Failed,
}

/// <summary>How one stream ended, for logs and tests.</summary>
public enum SessionEnd
{
    /// <summary>Both directions finished (FIN both ways, everything acknowledged).</summary>
    Completed,

    /// <summary>A program's connection failed or reset; the peer was told (or will be on resume).</summary>
    LocalReset,

    /// <summary>The peer router reset the stream.</summary>
    PeerReset,

    /// <summary>The leg stayed down longer than the outage maximum.</summary>
    OutageTooLong,

    /// <summary>The peer router said it does not know the stream (restart), or restarted.</summary>
    PeerLost,

    /// <summary>The peer violated the frame protocol.</summary>
    ProtocolError,

    /// <summary>The router is stopping.</summary>
    Stopped,
}
