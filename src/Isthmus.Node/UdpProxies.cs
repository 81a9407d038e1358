using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Addressing;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node;

/// <summary>
/// The agent's UDP proxy sockets, one per remote endpoint, bound to image(remote VIP):port on this host's
/// loopback. Programs send to that image (the shim rewrites the VIP) and the proxy forwards to the overlay;
/// datagrams from that remote endpoint are sent to the program from the same socket, so the program sees
/// image(remote):port, which the shim shows as the remote VIP:port. No header ever reaches a program.
/// Idle proxies close after <see cref="IdleTimeout"/>; the shim re-announces a destination every 30 s.
/// </summary>
internal sealed class UdpProxies : IDisposable
{
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(2);
    public const int MaxProxies = 4096;
    private readonly VirtualNetwork _network;
    private readonly Func<uint> _ownVip;
    private readonly Action<VirtualEndpoint, VirtualEndpoint, ReadOnlyMemory<byte>> _send;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<VirtualEndpoint, UdpProxy> _proxies = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Timer _sweeper;

    /// <param name="send">Hands a datagram (source, destination, payload) to the router link.</param>
    public UdpProxies(VirtualNetwork network, Func<uint> ownVip, Action<VirtualEndpoint, VirtualEndpoint, ReadOnlyMemory<byte>> send, ILogger logger)
    {
        _network = network;
        _ownVip = ownVip;
        _send = send;
        _logger = logger;
        _sweeper = new Timer(_ => Sweep(IdleTimeout), null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));
    }

    public int Count => _proxies.Count;

    /// <summary>Makes sure datagrams to image(<paramref name="remote"/>) reach the overlay; returns 0 or an errno.</summary>
    public int Ensure(VirtualEndpoint remote) => GetOrCreate(remote, out _);

    /// <summary>Sends a datagram that came over the overlay from <paramref name="source"/> to this node's <paramref name="port"/>.</summary>
    public void Deliver(VirtualEndpoint source, ushort port, ReadOnlySpan<byte> payload)
    {
        if (GetOrCreate(source, out var proxy) != 0 || proxy is null)
        {
            _logger.LogDebug("Dropped datagram {Src} -> port {Port}: no proxy socket for its source", source, port);
            return;
        }

        proxy.Touch();
        try
        {
            proxy.Socket.SendTo(payload, SocketFlags.None, new IPEndPoint(proxy.ReturnAddress(port, _network.ToImage(_ownVip())), port));
        }
        catch (SocketException e)
        {
            // Like a kernel that cannot queue a datagram: it is lost, nothing else is affected.
            _logger.LogDebug("Dropped datagram {Src} -> port {Port}: {Error}", source, port, e.SocketErrorCode);
        }
    }

    private int GetOrCreate(VirtualEndpoint remote, out UdpProxy? proxy)
    {
        if (_proxies.TryGetValue(remote, out proxy))
        {
            proxy.Touch();
            return 0;
        }

        if (_proxies.Count >= MaxProxies)
        {
            Sweep(TimeSpan.FromSeconds(10));
            if (_proxies.Count >= MaxProxies)
            {
                _logger.LogWarning("UDP proxy table full ({Max} remote endpoints in use); dropping traffic to {Remote}", MaxProxies, remote);
                return 105; // ENOBUFS
            }
        }

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            // Beside programs bound to the wildcard on the same port (the shim sets SO_REUSEADDR on
            // theirs too): the kernel delivers to the most specific match, so each gets its own.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            // A burst from a fast sender must wait in the kernel while the agent drains it: ask for 4 MiB (the
            // kernel caps it at net.core.rmem_max; the default, ~200 KiB, holds ~150 full-size Ethernet datagrams).
            socket.ReceiveBufferSize = 4 << 20;
            socket.SendBufferSize = 4 << 20;
            socket.Bind(new IPEndPoint(IPv4.ToIPAddress(_network.ToImage(remote.Address)), remote.Port));
        }
        catch (SocketException e)
        {
            socket.Dispose();
            if (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                // A program of this host holds the port on the wildcard without SO_REUSEADDR (bound before
                // the shim, or by port 0): proxying would take its datagrams. Say so rather than misdeliver.
                _logger.LogWarning("Cannot open a UDP proxy for {Remote}: port {Port} is held on the wildcard address by a program of this host; datagrams to {Remote} fail with EADDRINUSE", remote, remote.Port, remote);
                return 98; // EADDRINUSE
            }

            _logger.LogWarning("Cannot open a UDP proxy for {Remote}: {Error}", remote, e.SocketErrorCode);
            return (int)e.SocketErrorCode == 0 ? 5 : e.NativeErrorCode;
        }

        var created = new UdpProxy(remote, socket);
        proxy = _proxies.GetOrAdd(remote, created);
        if (!ReferenceEquals(proxy, created))
        {
            socket.Dispose(); // another request won the race; its socket is the proxy
            return 0;
        }

        _ = ReceiveLoopAsync(created);
        _logger.LogDebug("UDP proxy for {Remote} open", remote);
        return 0;
    }

    private async Task ReceiveLoopAsync(UdpProxy proxy)
    {
        var buffer = new byte[LinkFrame.MaxDatagramPayload + 1];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stopping.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await proxy.Socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stopping.Token).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue; // an ICMP error for an earlier delivery, or an oversized datagram: not fatal
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return; // closed by the sweeper or the agent stopping
            }

            proxy.Touch();
            var from = (IPEndPoint)received.RemoteEndPoint;
            var own = _ownVip();
            var address = IPv4.ToUInt32(from.Address);
            // A program bound to image(own VIP) or to the wildcard (the kernel then sends from 127.0.0.1) is this
            // node; an image of another VIP is another virtual node on this host, whose datagrams are not ours.
            if (_network.IsImage(address) && _network.FromImage(address) != own)
            {
                _logger.LogDebug("Dropped datagram from {From} to proxy {Remote}: not from this node", from, proxy.Remote);
                continue;
            }

            proxy.Learn((ushort)from.Port, address);
            _send(new VirtualEndpoint(own, (ushort)from.Port), proxy.Remote, buffer.AsMemory(0, received.ReceivedBytes));
        }
    }

    private void Sweep(TimeSpan idle)
    {
        var cutoff = Environment.TickCount64 - (long)idle.TotalMilliseconds;
        foreach (var (remote, proxy) in _proxies)
        {
            if (proxy.LastUsed < cutoff && _proxies.TryRemove(new KeyValuePair<VirtualEndpoint, UdpProxy>(remote, proxy)))
            {
                proxy.Socket.Dispose();
                _logger.LogDebug("UDP proxy for {Remote} closed (idle)", remote);
            }
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _sweeper.Dispose();
        foreach (var proxy in _proxies.Values)
        {
            proxy.Socket.Dispose();
        }

        _proxies.Clear();
        _stopping.Dispose();
    }

    private sealed class UdpProxy(VirtualEndpoint remote, Socket socket)
    {
        private readonly ConcurrentDictionary<ushort, uint> _returnAddresses = new();
        private long _lastUsed = Environment.TickCount64;

        /// <summary>
        /// Remembers where this node's socket on <paramref name="port"/> sends from. A socket bound to the wildcard
        /// that connects (iperf3 -u, many UDP servers) gets the kernel's route source, 127.0.0.1, as its local
        /// address, and then receives only datagrams addressed there; one bound to image(own VIP) only those
        /// addressed to the image. Replies are delivered to whichever address the program last sent from,
        /// as a NAT learns a mapping.
        /// </summary>
        public void Learn(ushort port, uint address) => _returnAddresses[port] = address;

        /// <summary>Where to deliver datagrams for this node's <paramref name="port"/>: what it last sent from, else its image.</summary>
        public IPAddress ReturnAddress(ushort port, uint image) =>
            IPv4.ToIPAddress(_returnAddresses.TryGetValue(port, out var learned) ? learned : image);

        public VirtualEndpoint Remote { get; } = remote;

        public Socket Socket { get; } = socket;

        public long LastUsed => Interlocked.Read(ref _lastUsed);

        public void Touch() => Interlocked.Exchange(ref _lastUsed, Environment.TickCount64);
    }
}
