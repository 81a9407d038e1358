using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Addressing;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node;

/// <summary>
/// The destination side of kernel-direct LAN streams. A connecting node's shim, holding a router grant (a
/// DirectStream leg header keyed by this node's session key), connects the program's own socket to this
/// listener and sends the grant. Once it verifies, the agent rings the listening program: it connects a
/// <em>doorbell</em> from image(src VIP):src port to image(own VIP):port, exactly as for a relayed stream, so
/// that the program's listener becomes readable and its accept returns. The program's shim then asks ADOPT for
/// that doorbell and receives the LAN socket itself (SCM_RIGHTS), which it puts in the doorbell's place: from
/// then on both programs' sockets are the two ends of one kernel TCP connection, with no relay.
/// If the listener's process never said LISTEN (its shim does not adopt: seccomp mode, a program started
/// without the shim) or does not adopt within <see cref="AdoptTimeout"/>, the agent relays between the LAN
/// socket and the doorbell instead, so the stream works either way.
/// The LAN socket is only ever used with blocking calls before it is handed over: an async operation would
/// register it with this process's epoll, whose registration would outlive our close of it (epoll follows the
/// open file, which the program then holds) and wake this process for every packet of the program's stream.
/// </summary>
internal sealed class DirectStreams(Func<NodeSessionState?> session, VirtualNetwork network, ReplayGuard replays, ILogger logger) : IDisposable
{
    private static readonly TimeSpan AdoptTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan HeaderTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan DoorbellTimeout = TimeSpan.FromSeconds(10);
    private const int MaxHandshakes = 256;
    /// <summary>Ports whose listener said LISTEN, with the processes that said it (a registration lives as long as one of them).</summary>
    private readonly ConcurrentDictionary<ushort, int[]> _adoptingPorts = new();
    private readonly ConcurrentDictionary<(uint Ip, ushort Port, ushort ListenPort), Pending> _pending = new();
    private readonly ConcurrentDictionary<(uint LocalIp, ushort LocalPort, uint PeerIp, ushort PeerPort), (VirtualEndpoint Peer, ushort LocalPort)> _adoptedStreams = new();
    private const int MaxRemembered = 65536;
    private readonly SemaphoreSlim _handshakes = new(MaxHandshakes, MaxHandshakes);
    private readonly Core.Logging.RateLimitedLog _offenders = new(logger);
    private Socket? _listener;
    private long _adopted;
    private long _relayed;

    /// <summary>Streams handed to programs (the kernel-direct path).</summary>
    public long Adopted => Interlocked.Read(ref _adopted);

    /// <summary>Direct connections relayed here because the listening program did not adopt them.</summary>
    public long Relayed => Interlocked.Read(ref _relayed);

    /// <summary>A stream waiting for its program's ADOPT; <see cref="Replied"/> says whether the connecting side got its OK (the handover waits for it).</summary>
    private sealed record Pending((uint Ip, ushort Port, ushort ListenPort) Key, Socket Lan, Socket Doorbell, VirtualEndpoint Peer, TaskCompletionSource Adopted, TaskCompletionSource<bool> Replied);

    /// <summary>Listens on <paramref name="local"/> (the LAN address the router sees us at) once; returns the port.</summary>
    public ushort Bind(IPAddress local)
    {
        if (_listener is null)
        {
            _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _listener.Bind(new IPEndPoint(local, 0));
            _listener.Listen(1024);
            new Thread(AcceptLoop) { IsBackground = true, Name = "isthmus-direct-accept" }.Start();
        }

        return (ushort)((IPEndPoint)_listener.LocalEndPoint!).Port;
    }

    /// <summary>
    /// LISTEN: process <paramref name="pid"/> listens on this port and adopts direct streams. The registration is
    /// tied to that process: once it has exited, a later listener on the port (a seccomp-mode or un-interposed
    /// program, which never adopts) is relayed at once instead of after the adoption timeout on every stream.
    /// Several live processes may share a port (a pre-forking server, SO_REUSEPORT); the list keeps the newest and
    /// at most 15 older live ones, so a port re-registered by many short-lived processes cannot grow it without
    /// bound, and dead ones are dropped whenever a process registers.
    /// </summary>
    public void ListenerAdopts(ushort port, int pid) =>
        _adoptingPorts.AddOrUpdate(port, _ => [pid], (_, pids) => pids.Contains(pid) ? pids : [.. pids.Where(IsAlive).Take(15), pid]);

    /// <summary>Some process that registered <paramref name="port"/> is still alive (an unknown PID, 0, counts as alive).</summary>
    private bool Adopts(ushort port)
    {
        if (!_adoptingPorts.TryGetValue(port, out var pids))
        {
            return false;
        }

        if (pids.Any(IsAlive))
        {
            return true;
        }

        _adoptingPorts.TryRemove(new KeyValuePair<ushort, int[]>(port, pids));
        return false;
    }

    private static bool IsAlive(int pid) => pid <= 0 || Directory.Exists($"/proc/{pid}");

    /// <summary>ADOPT: the pending direct stream whose doorbell came from <paramref name="doorbellSource"/> to <paramref name="listenPort"/>, taken (null if none).</summary>
    public async Task<(Socket Lan, VirtualEndpoint Peer, Action Done)?> TryAdoptAsync((uint Ip, ushort Port) doorbellSource, ushort listenPort)
    {
        var key = (doorbellSource.Ip, doorbellSource.Port, listenPort);
        if (!_pending.TryGetValue(key, out var pending))
        {
            return null;
        }

        // The program may accept the doorbell before the connecting side has its OK; the socket moves only after.
        bool replied;
        try
        {
            replied = await pending.Replied.Task.WaitAsync(AdoptTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }

        if (!replied || !_pending.TryRemove(key, out _))
        {
            return null;
        }

        Remember(pending);
        return (pending.Lan, pending.Peer, () =>
        {
            // The program holds the LAN socket now; our copies of it and of the doorbell go.
            pending.Lan.Dispose();
            pending.Doorbell.Dispose();
            Interlocked.Increment(ref _adopted);
            pending.Adopted.TrySetResult();
        }
        );
    }

    /// <summary>DIRECT_PEER: the overlay peer and local port of an adopted stream, by its kernel addresses (null if unknown).</summary>
    public (VirtualEndpoint Peer, ushort LocalPort)? Lookup((uint Ip, ushort Port) local, (uint Ip, ushort Port) peer) =>
        _adoptedStreams.TryGetValue((local.Ip, local.Port, peer.Ip, peer.Port), out var found) ? found : null;

    /// <summary>
    /// Remembers an adopted stream for DIRECT_PEER (an inetd-style child exec'd with the socket has no peer cache).
    /// Bounded: past the bound the table starts over (a lookup then fails and the program sees LAN addresses).
    /// </summary>
    private void Remember(Pending pending)
    {
        if (pending.Lan.LocalEndPoint is not IPEndPoint local || pending.Lan.RemoteEndPoint is not IPEndPoint remote)
        {
            return;
        }

        if (_adoptedStreams.Count >= MaxRemembered)
        {
            _adoptedStreams.Clear();
        }

        _adoptedStreams[(IPv4.ToUInt32(local.Address), (ushort)local.Port, IPv4.ToUInt32(remote.Address), (ushort)remote.Port)] = (pending.Peer, pending.Key.ListenPort);
    }

    private void AcceptLoop()
    {
        while (true)
        {
            Socket lan;
            try
            {
                lan = _listener!.Accept();
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted or SocketError.Shutdown or SocketError.InvalidArgument)
            {
                return;
            }
            catch (SocketException e)
            {
                logger.LogDebug("Direct accept failed: {Error}", e.SocketErrorCode);
                Thread.Sleep(10); // EMFILE and the like: do not spin
                continue;
            }

            if (!_handshakes.Wait(0))
            {
                _offenders.Warning("Dropped a direct connection from {Remote}: {Max} handshakes in progress", lan.RemoteEndPoint, MaxHandshakes);
                lan.Dispose();
                continue;
            }

            _ = Task.Run(() => ServeAsync(lan));
        }
    }

    private async Task ServeAsync(Socket lan)
    {
        var released = false;
        void Release()
        {
            if (!released)
            {
                released = true;
                _handshakes.Release();
            }
        }

        try
        {
            var peer = (IPEndPoint)lan.RemoteEndPoint!;
            var (header, refusal) = ReadGrant(lan);
            if (header is null)
            {
                _offenders.Warning("Refused direct connection from {Remote}: {Reason}", peer, refusal);
                TryReply(lan, LegStatus.AuthenticationFailed);
                lan.Dispose();
                return;
            }

            // The stream's source port: a grant handed to a connecting shim says 0, and the connection's own port is
            // what that program's getsockname shows; a grant from the router for a stream from another site carries
            // the far program's port (the router's LAN connection has a port of its own).
            var source = new VirtualEndpoint(header.Source.Address, header.Source.Port != 0 ? header.Source.Port : (ushort)peer.Port);
            var (doorbell, status, pending) = await RingAsync(lan, source, header.Destination).ConfigureAwait(false);
            if (doorbell is null)
            {
                TryReply(lan, status);
                lan.Dispose();
                return;
            }

            var replied = TryReply(lan, LegStatus.Ok);
            pending?.Replied.TrySetResult(replied);
            if (!replied)
            {
                Forget(pending);
                lan.Dispose();
                doorbell.Dispose();
                return;
            }

            Release();
            logger.LogDebug("Direct stream {Stream} {Src} -> {Dst} from {Remote}", header.StreamId, source, header.Destination, peer);
            if (pending is not null)
            {
                // WaitAsync drops its timer once adopted (a Task.Delay would keep one per stream for the whole 3 s).
                try
                {
                    await pending.Adopted.Task.WaitAsync(AdoptTimeout).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                }
                if (!_pending.TryRemove(pending.Key, out _))
                {
                    return; // adopted (or being handed over): the program holds the stream
                }

                logger.LogInformation("Direct stream {Stream} to port {Port} was not adopted within {Seconds} s: relaying it", header.StreamId, header.Destination.Port, AdoptTimeout.TotalSeconds);
            }

            Interlocked.Increment(ref _relayed);
            await StreamRelay.RunAsync(new RelayEndpoint(lan), new RelayEndpoint(doorbell), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            logger.LogDebug("Direct connection ended in its handshake: {Error}", e.Message);
            lan.Dispose();
        }
        finally
        {
            Release();
        }
    }

    /// <summary>Reads and checks the grant with blocking calls (see the class comment); the header, or null and why not.</summary>
    private (LegHeader? Header, string Refusal) ReadGrant(Socket lan)
    {
        lan.ReceiveTimeout = (int)HeaderTimeout.TotalMilliseconds;
        var raw = new byte[LegHeader.Size];
        for (var got = 0; got < raw.Length;)
        {
            var n = lan.Receive(raw, got, raw.Length - got, SocketFlags.None);
            if (n == 0)
            {
                return (null, "closed before its grant");
            }

            got += n;
        }

        lan.ReceiveTimeout = 0;
        if (!LegHeader.TryParse(raw, out var header, out var error))
        {
            return (null, error);
        }

        var state = session();
        var refusal = state is null ? "no session with the router"
            : header!.Kind != LegKind.DirectStream ? $"leg kind {header.Kind} on the direct listener"
            : header.KeyId != state.SessionId ? "not keyed for this node's session"
            : !LegHeader.VerifyMac(raw, state.Key) ? "bad MAC"
            : header.Destination.Address != state.Vip ? $"destination {header.Destination} is not this node"
            : !header.IsFresh(DateTimeOffset.UtcNow) ? "stale grant"
            : !replays.TryAccept(header.StreamId) ? "replayed grant"
            : null;
        return refusal is null ? (header, "") : (null, refusal);
    }

    /// <summary>
    /// Connects the doorbell from image(src):port (any port if the client's own socket holds it on this host) to
    /// the program's listener. When the listener adopts, the pending entry is registered before the connect, so
    /// that the program's ADOPT cannot come before it.
    /// </summary>
    private async Task<(Socket? Doorbell, LegStatus Status, Pending? Pending)> RingAsync(Socket lan, VirtualEndpoint source, VirtualEndpoint destination)
    {
        var target = new IPEndPoint(IPv4.ToIPAddress(network.ToImage(destination.Address)), destination.Port);
        var fromImage = network.ToImage(source.Address);
        var adopts = Adopts(destination.Port);
        foreach (var port in new[] { (int)source.Port, 0 })
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            Pending? key = null;
            try
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(IPv4.ToIPAddress(fromImage), port));
                if (adopts)
                {
                    key = new Pending((fromImage, (ushort)((IPEndPoint)socket.LocalEndPoint!).Port, destination.Port), lan, socket, source,
                        new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
                    _pending[key.Key] = key;
                }

                await ConnectDoorbellAsync(socket, target).ConfigureAwait(false);
                return (socket, LegStatus.Ok, key);
            }
            catch (SocketException e) when (port != 0 && e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AddressNotAvailable)
            {
                Forget(key);
                socket.Dispose();
            }
            catch (SocketException e)
            {
                Forget(key);
                socket.Dispose();
                return (null, LegStatusErrno.FromSocketError(e.SocketErrorCode), null);
            }
        }

        return (null, LegStatus.HostUnreachable, null);
    }

    /// <summary>
    /// Connects the doorbell with a non-blocking connect on this thread: a loopback connect is complete (or refused)
    /// by the time the call returns, and an async connect would cost an epoll registration and a thread-pool hop per
    /// stream. Only a listener whose backlog is full leaves it pending: then it is polled every few milliseconds
    /// without holding a thread, for at most <see cref="DoorbellTimeout"/> (TimedOut).
    /// </summary>
    private static async Task ConnectDoorbellAsync(Socket socket, IPEndPoint target)
    {
        socket.Blocking = false;
        try
        {
            socket.Connect(target);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            while (!socket.Poll(0, SelectMode.SelectWrite) && !socket.Poll(0, SelectMode.SelectError))
            {
                if (System.Diagnostics.Stopwatch.GetElapsedTime(started) > DoorbellTimeout)
                {
                    throw new SocketException((int)SocketError.TimedOut);
                }

                await Task.Delay(5).ConfigureAwait(false);
            }

            if (socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is int error and not 0)
            {
                throw new SocketException(error);
            }
        }

        socket.Blocking = true;
    }

    private void Forget(Pending? pending)
    {
        if (pending is not null)
        {
            _pending.TryRemove(pending.Key, out _);
            pending.Replied.TrySetResult(false);
        }
    }

    private static bool TryReply(Socket lan, LegStatus status)
    {
        try
        {
            lan.Send(LegReply.Encode(status), SocketFlags.None);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _listener?.Dispose();
        _handshakes.Dispose();
    }
}
