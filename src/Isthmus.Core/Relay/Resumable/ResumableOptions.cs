namespace Isthmus.Core.Relay.Resumable;

/// <summary>Timers and bounds of resumable WAN legs (router flags <c>--wan-*</c>).</summary>
public sealed record ResumableOptions
{
    public static ResumableOptions Default { get; } = new();

    /// <summary>A leg that sent nothing for this long sends an Ack as a keepalive.</summary>
    public TimeSpan Keepalive { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A leg on which nothing arrived for this long (while we wait to read) is treated as broken.</summary>
    public TimeSpan DeadAfter { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>First re-dial delay after a leg broke; doubles up to <see cref="RedialMax"/>.</summary>
    public TimeSpan RedialFirst { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan RedialMax { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>One re-dial attempt (connect, TLS, handshake) gives up after this long.</summary>
    public TimeSpan RedialTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>A stream whose leg stays down longer than this is ended with a reset.</summary>
    public TimeSpan OutageMax { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Unacknowledged bytes held per stream (in memory) before the program is flow-controlled.</summary>
    public int StreamBuffer { get; init; } = 8 * 1024 * 1024;

    /// <summary>Unacknowledged bytes held by all streams of the router together.</summary>
    public long BufferBudget { get; init; } = 512L * 1024 * 1024;

    /// <summary>An unacknowledged receive count is acknowledged at the latest after this long.</summary>
    public TimeSpan AckDelay { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Received bytes that trigger an Ack at once (a quarter of the stream buffer, at most 1 MiB).</summary>
    public long AckEvery => Math.Min(StreamBuffer / 4, 1024 * 1024);

    /// <summary>Null if consistent, else what is wrong.</summary>
    public string? Problem() =>
        Keepalive <= TimeSpan.Zero ? "keepalive must be positive"
        : DeadAfter <= Keepalive ? "the dead-leg timeout must be longer than the keepalive interval"
        : RedialFirst <= TimeSpan.Zero || RedialMax < RedialFirst ? "re-dial delays must be positive, first <= max"
        : OutageMax <= TimeSpan.Zero ? "the outage maximum must be positive"
        : StreamBuffer < 256 * 1024 ? "the per-stream buffer must be at least 256 KiB"
        : BufferBudget < StreamBuffer ? "the buffer budget must be at least one stream buffer"
        : null;
}
