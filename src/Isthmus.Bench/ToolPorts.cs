namespace Isthmus.Bench;

/// <summary>The TCP ports the tools' servers listen on; user-space relays (socat, ssh -L) forward each of them.</summary>
public static class ToolPorts
{
    public const int Iperf3 = 5201;
    public const int NetPipe = 5002;
    public const int Memcached = 11211;
    public const int Connect = 5300;
    public const int Idle = 5310;

    public static readonly int[] All = [Iperf3, NetPipe, Memcached, Connect, Idle];
}
