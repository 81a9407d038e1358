namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// Windows, frame sizes and timers of a <see cref="Trunk"/>. Both ends of a trunk must use the same
/// <see cref="InitialWindow"/> and <see cref="MaxFrameData"/>: each side checks the other's Data frames
/// against its own values.
/// </summary>
public sealed record TrunkOptions
{
    public static TrunkOptions Default { get; } = new();

    /// <summary>
    /// Bytes a sender may have in flight per stream and direction before the receiver's reader consumes
    /// them. 4 MiB: one stream over a 10 ms round trip is not window-limited below ≈ 3 Gbit/s. Memory is
    /// used only for bytes actually waiting, not reserved.
    /// </summary>
    public int InitialWindow { get; init; } = 4 * 1024 * 1024;

    /// <summary>Largest Data body. Bigger frames delay other streams' frames behind them for longer.</summary>
    public int MaxFrameData { get; init; } = 64 * 1024;

    /// <summary>A trunk on which nothing arrived for this long sends a Ping (the answer counts as arrival).</summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A trunk on which nothing at all arrived for this long is dead (once a Ping of ours went unanswered for
    /// at least DeadAfter - KeepaliveInterval).
    /// </summary>
    public TimeSpan DeadAfter { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Concurrent streams the accepting side holds; an Open beyond it is answered with a Reset.</summary>
    public int MaxStreams { get; init; } = 65_536;

    /// <summary>
    /// Most bytes coalesced into one write of the underlying stream (one TLS record run, one syscall). Also
    /// the most a stream may have queued for the writer before its writes wait.
    /// </summary>
    public int WriteBatch { get; init; } = 256 * 1024;

    /// <summary>Null if consistent, else what is wrong.</summary>
    public string? Problem() =>
        MaxFrameData is < 1024 or > 1024 * 1024 ? "the largest frame must be 1 KiB..1 MiB"
        : InitialWindow is < 1024 or > 1024 * 1024 * 1024 ? "the initial window must be 1 KiB..1 GiB"
        : WriteBatch < MaxFrameData + TrunkFrame.HeaderSize ? "the write batch must hold at least one full frame"
        : KeepaliveInterval <= TimeSpan.Zero ? "the keepalive interval must be positive"
        : DeadAfter <= KeepaliveInterval ? "the dead-trunk timeout must be longer than the keepalive interval"
        : MaxStreams < 1 ? "at least one stream must be allowed"
        : null;
}
