using System.Net;

namespace Isthmus.Router;

/// <summary>A node that is up now: its VIP, where the router reaches its agent, and the key of its legs.</summary>
public sealed class NodeSession(string name, uint vip, ulong id, byte[] key, IPEndPoint dataEndpoint)
{
    /// <summary>A node whose control channel stays silent this long is considered gone.</summary>
    public static readonly TimeSpan LeaseTimeout = TimeSpan.FromSeconds(15);

    public static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(5);

    public string Name { get; } = name;

    public uint Vip { get; } = vip;

    public ulong Id { get; } = id;

    public byte[] Key { get; } = key;

    public IPEndPoint DataEndpoint { get; } = dataEndpoint;

    /// <summary>The agent's direct-stream listener (same address as <see cref="DataEndpoint"/>), if it announced one at enrolment.</summary>
    public IPEndPoint? DirectEndpoint { get; set; }

    public CancellationTokenSource Ended { get; } = new();
}
