using System.Net;
using System.Net.Sockets;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Config;
using Isthmus.Core.Naming;
using Isthmus.Core.Relay;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;
using Isthmus.Node.Dns;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node;

/// <summary>
/// The node agent: enrols with the site router, then serves interposed programs (control socket and
/// loopback data endpoint) and the router's legs towards this node's programs.
/// </summary>
public sealed class NodeAgent : IDisposable
{
    private static readonly TimeSpan LocalConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long a connect waits for the agent to re-enrol after losing its router (a restart takes seconds).</summary>
    private static readonly TimeSpan EnrolmentWait = TimeSpan.FromSeconds(10);

    /// <summary>How long an inbound leg under an unknown session waits while the agent is re-enrolling (the router may be a step ahead).</summary>
    private static readonly TimeSpan InboundEnrolmentWait = TimeSpan.FromSeconds(3);
    private readonly ClusterFile _cluster;
    private readonly SiteSettings _site;
    private readonly VirtualNetwork _network;
    private readonly string _name;
    private readonly RouterLink _routerLink;
    private readonly ILogger _logger;
    private readonly PendingConnects _connects = new();
    private readonly ReplayGuard _replays = new();
    private readonly IPEndPoint _routerLan;
    private readonly DatagramLink _datagrams;
    private readonly UdpProxies _udp;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ColocatedAgents _colocated;
    private readonly IPEndPoint? _socksEndpoint;
    private Socket? _lanData;
    private readonly DirectStreams? _direct;
    private ushort? _directPort;

    // Inbound legs come only from our router, but the port is open to the LAN: bound what strangers can hold.
    private readonly HandshakeGuard _inboundHandshakes = new(maxPending: 256, deadline: TimeSpan.FromSeconds(10));
    private readonly Core.Logging.RateLimitedLog _offenders;
    private Socket? _loopbackData;

    public NodeAgent(string clusterDirectory, string siteName, string name, uint? requestedVip, ILoggerFactory loggerFactory, IPEndPoint? socks = null)
    {
        if (!NodeNames.IsValid(name))
        {
            throw new UserException($"'{name}' is not a valid node name (DNS label: a-z, 0-9, '-', 1..63 characters)");
        }

        var dir = new ClusterDirectory(clusterDirectory);
        _cluster = dir.LoadClusterFile();
        _site = _cluster.FindSite(siteName)
            ?? throw new UserException($"site '{siteName}' is not in {dir.ClusterFilePath}; sites: {string.Join(", ", _cluster.Sites.Select(s => s.Name))}");
        _network = new VirtualNetwork(_cluster.Cluster.Network, _cluster.Cluster.ImageBase);
        _name = name;
        _logger = loggerFactory.CreateLogger("isthmus.node");
        _offenders = new Core.Logging.RateLimitedLog(_logger);
        _routerLan = _site.Lan.ToIPEndPoint();
        _routerLink = new RouterLink(_routerLan, TlsEndpoints.RouterName(_site.Name, _cluster.Cluster.Name), dir.LoadCaCertificate(),
            dir.LoadEnrolSecret(), NodeIdentity.LoadOrCreate(dir.NodeKeyPath(name)), name, requestedVip, loggerFactory.CreateLogger("isthmus.node.router"))
        {
            DataPortFor = BindLanData,
            DirectPortFor = () => _directPort,
            Naming = (_cluster.Cluster.Name, [.. _cluster.Sites.Select(s => s.Name)]),
        };
        if (_cluster.Cluster.DirectLan)
        {
            _direct = new DirectStreams(() => _routerLink.Current, _network, _replays, loggerFactory.CreateLogger("isthmus.node.direct"));
        }

        _udp = new UdpProxies(_network, () => _routerLink.Current?.Vip ?? 0, (src, dst, payload) => _datagrams!.Send(src, dst, payload.Span), loggerFactory.CreateLogger("isthmus.node.udp"));
        _loggerFactory = loggerFactory;
        _socksEndpoint = socks;
        _colocated = new ColocatedAgents(RuntimeDirectory.Resolve(), name);
        _datagrams = new DatagramLink(_routerLan, _site.Subnet.Network + 1, () => _routerLink.Enrolled, loggerFactory.CreateLogger("isthmus.node.udp"))
        {
            OnDatagram = DeliverDatagram,
        };
    }

    /// <summary>A datagram from the router for this node: hand it to the program's port from the sender's image.</summary>
    private void DeliverDatagram(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload)
    {
        if (destination.Address != _routerLink.Current?.Vip)
        {
            _logger.LogDebug("Dropped datagram {Src} -> {Dst}: not for this node", source, destination);
            return;
        }

        _udp.Deliver(source, destination.Port, payload);
    }

    /// <summary>Enrols, publishes itself for <c>isthmus run</c>, calls <paramref name="up"/> with the VIP, and serves until cancelled.</summary>
    public async Task RunAsync(Action<string> up, CancellationToken cancellationToken)
    {
        var runtimeDir = RuntimeDirectory.EnsureCreated();
        var socketPath = RuntimeDirectory.SocketPath(runtimeDir, _name);
        var infoPath = RuntimeDirectory.InfoPath(runtimeDir, _name);
        RefuseIfAlreadyRunning(socketPath);

        _loopbackData = AcceptLoop.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        using var socks = StartSocks();
        using var dns = new DnsResponder(() => _routerLink.Directory, _site.Name, _network, [.. ResolverConfig.ReadNameServers().Select(ns => new IPEndPoint(IPv4.ToIPAddress(ns), ResolverConfig.Port))], _loggerFactory.CreateLogger("isthmus.node.dns"));
        var state = await _routerLink.EnrolAsync(cancellationToken).ConfigureAwait(false);
        using var shim = new ShimControlServer(socketPath, HandleShimAsync, _logger);
        shim.Start();
        var vipText = IPv4.Format(state.Vip);
        new AgentInfo
        {
            Name = _name,
            Site = _site.Name,
            Cluster = _cluster.Cluster.Name,
            Vip = vipText,
            Network = _cluster.Cluster.Network.ToString(),
            Image = IPv4.Format(_cluster.Cluster.ImageBase),
            DataEndpoint = _loopbackData.LocalEndPoint!.ToString()!,
            SocketPath = socketPath,
            Pid = Environment.ProcessId,
            NodeHostname = _cluster.Cluster.NodeHostname,
            Direct = _direct is not null,
            Socks = socks?.LocalEndPoint.ToString(),
            Dns = dns.LocalEndPoint.ToString(),
        }.Write(infoPath);
        _logger.LogInformation("Node {Node} up at site {Site}: VIP {Vip}", _name, _site.Name, vipText);
        if (socks is not null)
        {
            _logger.LogInformation("SOCKS5 for programs of this user on {Endpoint}", socks.LocalEndPoint);
        }

        up(vipText);

        try
        {
            await Task.WhenAll(
                socks?.RunAsync(cancellationToken) ?? Task.CompletedTask,
                dns.RunAsync(cancellationToken),
                _routerLink.MaintainAsync(cancellationToken),
                _datagrams.RunAsync(cancellationToken),
                shim.RunAsync(cancellationToken),
                AcceptLoop.RunAsync(_loopbackData, HandleProgramConnectionAsync, _logger, cancellationToken),
                AcceptLoop.RunAsync(_lanData!, HandleInboundLegAsync, _logger, cancellationToken)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            await _routerLink.LeaveAsync().ConfigureAwait(false);
            TryDelete(infoPath);
            _loopbackData.Dispose();
            _lanData?.Dispose();
            _logger.LogInformation("Node {Node} left", _name);
        }
    }

    internal uint CurrentVip => _routerLink.Current?.Vip ?? 0;

    internal VirtualNetwork Network => _network;

    internal Core.Naming.NodeDirectory Directory => _routerLink.Directory;

    internal string SiteName => _site.Name;

    internal void SendDatagram(VirtualEndpoint source, VirtualEndpoint destination, ReadOnlySpan<byte> payload) =>
        _datagrams.Send(source, destination, payload);

    /// <summary>Opens a stream from this node's VIP:<paramref name="sourcePort"/> to <paramref name="destination"/> through the router.</summary>
    internal Task<LegDialResult> DialStreamAsync(ushort sourcePort, VirtualEndpoint destination, CancellationToken cancellationToken) =>
        DialRouterAsync(Guid.NewGuid(), sourcePort, destination, cancellationToken);

    /// <summary>
    /// Dials the router for a stream under the live session. Between losing the router and re-enrolling (a
    /// router restart: the new process knows no session key) the connect waits for the enrolment, as a
    /// connect waits for a slow network, rather than fail with EACCES; ENETUNREACH if none comes in time.
    /// </summary>
    private async Task<LegDialResult> DialRouterAsync(Guid streamId, ushort sourcePort, VirtualEndpoint destination, CancellationToken cancellationToken)
    {
        if (_routerLink.Revoked)
        {
            return new LegDialResult(LegStatus.AuthenticationFailed, null, "this node is revoked in the cluster");
        }

        var state = await _routerLink.EnrolledAsync(EnrolmentWait, cancellationToken).ConfigureAwait(false);
        if (state is null)
        {
            return new LegDialResult(LegStatus.NetworkUnreachable, null, $"not enrolled with the router for {EnrolmentWait.TotalSeconds:0} s");
        }

        var header = new LegHeader(LegKind.TcpStream, 0, streamId, new VirtualEndpoint(state.Vip, sourcePort), destination,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), state.SessionId).ToBytes(state.Key);
        return await LegConnector.DialAsync(_routerLan, header, secure: null, LegConnector.DefaultTimeout, cancellationToken).ConfigureAwait(false);
    }

    private Socks.Socks5Server? StartSocks()
    {
        if (_socksEndpoint is null)
        {
            return null;
        }

        try
        {
            return new Socks.Socks5Server(_socksEndpoint, new AgentSocksOverlay(this), _loggerFactory.CreateLogger("isthmus.node.socks"));
        }
        catch (SocketException e)
        {
            throw new UserException($"cannot listen for SOCKS5 on {_socksEndpoint}: {e.Message} (is the port free?)", e, 1);
        }
    }

    private ushort BindLanData(IPAddress local)
    {
        // The router reaches us where our control connection came from; bind there once.
        _lanData ??= AcceptLoop.Listen(new IPEndPoint(local, 0));
        _directPort ??= _direct?.Bind(local);
        return (ushort)((IPEndPoint)_lanData.LocalEndPoint!).Port;
    }

    private static void RefuseIfAlreadyRunning(string socketPath)
    {
        if (!File.Exists(socketPath))
        {
            return;
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException)
        {
            return; // a stale socket from an agent that died: ours replaces it
        }

        throw new UserException($"a node agent for this name is already running here ({socketPath}); stop it first", 1);
    }

    private async Task<ShimReply> HandleShimAsync(ShimRequest request, int callerPid, CancellationToken cancellationToken)
    {
        var source = (request.SourceAddress, request.SourcePort);
        switch (request.Op)
        {
            case ShimOp.Direct:
                return await GrantDirectAsync(request.Destination, request.NonBlocking, cancellationToken).ConfigureAwait(false);
            case ShimOp.DirectPeer:
                if (_direct?.Lookup(source, (request.Destination.Address, request.Destination.Port)) is { } stream)
                {
                    return new ShimResponse(0, stream.Peer, Data: [(byte)(stream.LocalPort >> 8), (byte)stream.LocalPort]);
                }

                return new ShimResponse(Errno.ENoEnt, default);
            case ShimOp.Listen:
                _direct?.ListenerAdopts(request.Destination.Port, callerPid);
                return new ShimResponse(0, default);
            case ShimOp.Adopt:
                if (_direct is not null && await _direct.TryAdoptAsync(source, request.Destination.Port).ConfigureAwait(false) is { } adopted)
                {
                    return new ShimReply(new ShimResponse(0, adopted.Peer), adopted.Lan, adopted.Done);
                }

                return new ShimResponse(Errno.ENoEnt, default);
            case ShimOp.Peer:
                return _connects.TryGetPeer(source, out var peer) ? new ShimResponse(0, peer) : new ShimResponse(Errno.ENotConn, default);
            case ShimOp.UdpRoute:
                return new ShimResponse(RouteDatagrams(request.Destination), default);
            case ShimOp.ResolveName:
                return _routerLink.Directory.TryResolve(request.Name!, _site.Name, out var named)
                    ? new ShimResponse(0, new VirtualEndpoint(named.Vip, 0), named.CanonicalName(_cluster.Cluster.Name))
                    : new ShimResponse(Errno.ENoEnt, default);
            case ShimOp.ResolveAddress:
                return _routerLink.Directory.TryReverse(request.Destination.Address, out var holder)
                    ? new ShimResponse(0, new VirtualEndpoint(holder.Vip, 0), holder.CanonicalName(_cluster.Cluster.Name))
                    : new ShimResponse(Errno.ENoEnt, default);
        }

        var dst = request.Destination;
        if (!_network.IsVirtual(dst.Address) || _cluster.SiteForAddress(dst.Address) is null)
        {
            return new ShimResponse(LegStatusErrno.ENetUnreach, default);
        }

        var streamId = Guid.NewGuid();
        var dial = DialRouterAsync(streamId, request.SourcePort, dst, cancellationToken);
        if (!request.NonBlocking)
        {
            // A blocking connect gets the real result of the far end's connect, as without Isthmus.
            var result = await dial.ConfigureAwait(false);
            if (result.Endpoint is null)
            {
                _logger.LogDebug("Connect {Src} -> {Dst} failed: {Status} ({Detail})", request.SourcePort, dst, result.Status, result.Detail);
                return new ShimResponse(LegStatusErrno.ToErrno(result.Status), default);
            }
        }

        _connects.Add(source, new PendingConnect(dst, streamId, dial));
        return new ShimResponse(0, default);
    }

    /// <summary>
    /// DIRECT: for a node of this site, the router's grant for a kernel-direct stream (its direct listener and the
    /// header to send first); for a node of another site and a blocking connect, our own leg header and the
    /// router's LAN address, so the program's socket becomes the stream's LAN leg and this agent relays nothing.
    /// Otherwise EOPNOTSUPP, upon which the shim takes the router path (CONNECT): direct streams off, a
    /// non-blocking connect to another site (the shim would hold it for the whole path's setup, a WAN round trip
    /// and more), not enrolled (the router path waits for the enrolment), or no grant (which covers every refusal,
    /// so its errno comes from the router path).
    /// </summary>
    private async Task<ShimResponse> GrantDirectAsync(VirtualEndpoint dst, bool nonBlocking, CancellationToken cancellationToken)
    {
        // The session of the router as it is now: after the router restarted, wait for the re-enrolment (as a connect
        // through this agent does), so that the header is keyed for a session the router knows. A non-blocking
        // connect's header gets no reply, so a refused one would reach the program as a reset.
        var state = _routerLink.Current is null ? null : await _routerLink.EnrolledAsync(EnrolmentWait, cancellationToken).ConfigureAwait(false);
        if (state is null || _routerLink.Revoked || dst.Address == state.Vip)
        {
            return new ShimResponse(Errno.EOpNotSupp, default);
        }

        if (!_site.Subnet.Contains(dst.Address))
        {
            // Source port 0: the router takes the connection's own port, which is what the program's getsockname shows.
            // A non-blocking connect must not wait for the whole path (a WAN round trip and the far side's set-up):
            // its header asks the router for no reply, so the shim returns once the header is sent.
            return _routerLan.AddressFamily != AddressFamily.InterNetwork || _cluster.SiteForAddress(dst.Address) is null
                ? new ShimResponse(Errno.EOpNotSupp, default)
                : new ShimResponse(0, new VirtualEndpoint(IPv4.ToUInt32(_routerLan.Address), (ushort)_routerLan.Port),
                    Data: new LegHeader(LegKind.TcpStream, nonBlocking ? LegFlags.NoReply : (ushort)0, Guid.NewGuid(), new VirtualEndpoint(state.Vip, 0), dst,
                        DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), state.SessionId).ToBytes(state.Key));
        }

        if (_direct is null)
        {
            return new ShimResponse(Errno.EOpNotSupp, default);
        }

        var grant = await _routerLink.RequestDirectAsync(dst, cancellationToken).ConfigureAwait(false);
        if (grant?.Endpoint is null || grant.Header is null || !IPEndPoint.TryParse(grant.Endpoint, out var endpoint)
            || endpoint.AddressFamily != AddressFamily.InterNetwork)
        {
            return new ShimResponse(Errno.EOpNotSupp, default);
        }

        byte[] header;
        try
        {
            header = Convert.FromBase64String(grant.Header);
        }
        catch (FormatException)
        {
            return new ShimResponse(Errno.EOpNotSupp, default);
        }

        return header.Length == LegHeader.Size
            ? new ShimResponse(0, new VirtualEndpoint(IPv4.ToUInt32(endpoint.Address), (ushort)endpoint.Port), Data: header)
            : new ShimResponse(Errno.EOpNotSupp, default);
    }

    /// <summary>UDP_ROUTE: 0 once datagrams to image(dst) reach the overlay, else the errno a network would give.</summary>
    private int RouteDatagrams(VirtualEndpoint dst)
    {
        if (!_network.IsVirtual(dst.Address) || _cluster.SiteForAddress(dst.Address) is null)
        {
            return LegStatusErrno.ENetUnreach;
        }

        if (dst.Address == _routerLink.Current?.Vip || _colocated.Holds(dst.Address))
        {
            return 0; // our own VIP, or a node on this very host: its image is reached directly
        }

        // A VIP no node holds: what a LAN answers when nobody replies to ARP for the address.
        return _routerLink.Directory.TryReverse(dst.Address, out _) ? _udp.Ensure(dst) : Errno.EHostUnreach;
    }

    private async Task HandleProgramConnectionAsync(Socket program, CancellationToken cancellationToken)
    {
        program.NoDelay = true;
        var remote = (IPEndPoint)program.RemoteEndPoint!;
        var source = (IPv4.ToUInt32(remote.Address), (ushort)remote.Port);
        var local = new RelayEndpoint(program);
        if (!_connects.TryTake(source, out var pending))
        {
            _offenders.Warning("Reset a loopback connection from {Remote}: no connect was announced for it", remote);
            local.Abort();
            return;
        }

        try
        {
            var dial = await pending.Dial.ConfigureAwait(false);
            if (dial.Endpoint is null)
            {
                // Non-blocking connect whose far end failed: a reset is all a connected socket can show.
                _logger.LogInformation("Stream {Stream} to {Dst} failed after connect: {Status} ({Detail}); resetting the program's socket", pending.StreamId, pending.Destination, dial.Status, dial.Detail);
                local.Abort();
                return;
            }

            _logger.LogDebug("Stream {Stream} {Src} -> {Dst} open (outbound)", pending.StreamId, remote, pending.Destination);
            var result = await StreamRelay.RunAsync(local, dial.Endpoint, cancellationToken).ConfigureAwait(false);
            _logger.LogDebug("Stream {Stream} closed: {Up} B up, {Down} B down{Failed}", pending.StreamId, result.BytesAToB, result.BytesBToA, result.Failed ? ", reset" : "");
        }
        finally
        {
            _connects.MarkClosed(source);
        }
    }

    private async Task HandleInboundLegAsync(Socket socket, CancellationToken cancellationToken)
    {
        socket.NoDelay = true;
        var leg = new RelayEndpoint(socket);
        using var handshake = _inboundHandshakes.Admit(socket);
        LegHeader header;
        byte[] raw;
        try
        {
            (header, raw) = await LegConnector.ReadHeaderAsync(leg.Stream, _inboundHandshakes.Deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or IOException or SocketException)
        {
            _offenders.Warning("Dropped inbound leg from {Remote}: {Reason}", leg.RemoteDescription, e.Message);
            leg.Abort();
            return;
        }

        var state = _routerLink.Current!;
        if (header.KeyId != state.SessionId && _routerLink.Enrolled is null)
        {
            // Re-enrolling: the router may already dial under the session whose answer we are still reading.
            state = await _routerLink.EnrolledAsync(InboundEnrolmentWait, cancellationToken).ConfigureAwait(false) ?? state;
        }

        var refusal = header.Kind != LegKind.TcpStream ? $"leg kind {header.Kind} on the router's data port"
            : header.KeyId != state.SessionId ? "not keyed for this node's session"
            : !LegHeader.VerifyMac(raw, state.Key) ? "bad MAC"
            : header.Destination.Address != state.Vip ? $"destination {header.Destination} is not this node"
            : !header.IsFresh(DateTimeOffset.UtcNow) ? "stale header"
            : !_replays.TryAccept(header.StreamId) ? "replayed stream id"
            : null;
        if (refusal is not null)
        {
            _offenders.Warning("Refused inbound leg {Stream} from {Remote}: {Reason}", header.StreamId, leg.RemoteDescription, refusal);
            await LegConnector.TryReplyAsync(leg, LegStatus.AuthenticationFailed, cancellationToken).ConfigureAwait(false);
            leg.Abort();
            return;
        }

        handshake.Authenticated();

        var (program, status) = await ConnectToProgramAsync(header, cancellationToken).ConfigureAwait(false);
        if (program is null)
        {
            await LegConnector.TryReplyAsync(leg, status, cancellationToken).ConfigureAwait(false);
            await leg.DisposeAsync().ConfigureAwait(false);
            return;
        }

        if (!await LegConnector.TryReplyAsync(leg, LegStatus.Ok, cancellationToken).ConfigureAwait(false))
        {
            program.Abort();
            leg.Abort();
            return;
        }

        _logger.LogDebug("Stream {Stream} {Src} -> {Dst} open (inbound)", header.StreamId, header.Source, header.Destination);
        var relayed = await StreamRelay.RunAsync(leg, program, cancellationToken).ConfigureAwait(false);
        _logger.LogDebug("Stream {Stream} closed: {In} B in, {Out} B out{Failed}", header.StreamId, relayed.BytesAToB, relayed.BytesBToA, relayed.Failed ? ", reset" : "");
    }

    /// <summary>
    /// Connects to the program's listener at image(dst):port from image(src):srcport, so that its accept
    /// and getpeername see (after translation) the client's VIP and port.
    /// </summary>
    private async Task<(RelayEndpoint? Program, LegStatus Status)> ConnectToProgramAsync(LegHeader header, CancellationToken cancellationToken)
    {
        var target = new IPEndPoint(IPv4.ToIPAddress(_network.ToImage(header.Destination.Address)), header.Destination.Port);
        var from = IPv4.ToIPAddress(_network.ToImage(header.Source.Address));
        foreach (var port in new[] { (int)header.Source.Port, 0 })
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(from, port));
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(LocalConnectTimeout);
                await socket.ConnectAsync(target, deadline.Token).ConfigureAwait(false);
                return (new RelayEndpoint(socket), LegStatus.Ok);
            }
            catch (SocketException e) when (port != 0 && e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AddressNotAvailable)
            {
                // The client's own socket holds image(src):port on this host (both nodes here): use any port.
                socket.Dispose();
            }
            catch (SocketException e)
            {
                socket.Dispose();
                return (null, LegStatusErrno.FromSocketError(e.SocketErrorCode));
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                socket.Dispose();
                return (null, LegStatus.TimedOut);
            }
        }

        return (null, LegStatus.HostUnreachable);
    }

    public void Dispose()
    {
        _direct?.Dispose();
        _udp.Dispose();
        _inboundHandshakes.Dispose();
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Errno
{
    public const int ENoEnt = 2;
    public const int EOpNotSupp = 95;
    public const int ENotConn = 107;
    public const int EHostUnreach = 113;
}
