namespace Isthmus.Node.Socks;

/// <summary>Limits of the SOCKS5 server; the defaults suit the agent.</summary>
internal sealed record Socks5ServerOptions
{
    /// <summary>
    /// The whole handshake (greeting and request) must arrive within this time, one deadline for all reads,
    /// so a client trickling a byte at a time cannot hold a connection open. Default 10 s.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Bound on a CONNECT to this node's own VIP, which the server makes itself. Default 10 s, as the agent's.</summary>
    public TimeSpan LocalConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Connections served at once; more are closed at accept with a warning. Default 4096.</summary>
    public int MaxConnections { get; init; } = 4096;

    /// <summary>
    /// The uid whose sockets may use the server. Null (the default) means the agent's own uid (getuid());
    /// tests set another to see a real connection refused.
    /// </summary>
    public uint? AllowedUid { get; init; }
}
