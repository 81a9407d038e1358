using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Addressing;
using Isthmus.Core.Native;
using Isthmus.Core.Relay;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node.Socks;

/// <summary>
/// The agent's SOCKS5 server (RFC 1928 subset): no-authentication only, CONNECT and UDP ASSOCIATE to VIPs,
/// destinations as IPv4 addresses or names from the cluster directory. It lets programs that cannot be
/// interposed (static binaries, other users of a proxy setting) reach the overlay as this node.
/// </summary>
/// <remarks>
/// Access is by uid, not by password: a connection is served only if the client's TCP socket belongs to the
/// agent's own user (from the kernel's socket table), since the overlay trusts every stream from this node
/// as this node's. Others are told "no acceptable methods" (0xFF). Malformed input ends the connection with
/// one log line; the handshake has one deadline; nothing a client sends can throw out of a handler.
/// </remarks>
internal sealed class Socks5Server : IDisposable
{
    private static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(1);
    private readonly Socket _listener;
    private readonly ISocksOverlay _overlay;
    private readonly ILogger _logger;
    private readonly Socks5ServerOptions _options;
    private readonly uint _allowedUid;
    private int _connections;

    /// <summary>Binds and listens on <paramref name="endpoint"/> (port 0 picks one; see <see cref="LocalEndPoint"/>).</summary>
    /// <exception cref="SocketException">The endpoint cannot be bound (in use, not local).</exception>
    public Socks5Server(IPEndPoint endpoint, ISocksOverlay overlay, ILogger logger, Socks5ServerOptions? options = null)
    {
        _overlay = overlay;
        _logger = logger;
        _options = options ?? new Socks5ServerOptions();
        _allowedUid = _options.AllowedUid ?? Libc.GetUid();
        _listener = AcceptLoop.Listen(endpoint, backlog: 512);
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>Serves until cancelled; cancellation also ends every open stream and association.</summary>
    public Task RunAsync(CancellationToken cancellationToken) =>
        AcceptLoop.RunAsync(_listener, HandleAsync, _logger, cancellationToken);

    public void Dispose() => _listener.Dispose();

    /// <summary>
    /// Turns a requested destination into a VIP: a dotted quad (as IPv4 or as a name) is taken as is, other
    /// names go to the directory. Only VIPs are allowed: this is an overlay proxy, not a way off the node.
    /// </summary>
    internal static Socks5ReplyCode ResolveDestination(ISocksOverlay overlay, Socks5Destination destination, out uint vip)
    {
        vip = 0;
        switch (destination.Type)
        {
            case Socks5AddressType.IPv4:
                vip = destination.Address;
                break;
            case Socks5AddressType.DomainName when IPv4.TryParse(destination.Name, out var literal):
                vip = literal;
                break;
            case Socks5AddressType.DomainName:
                if (!overlay.TryResolve(destination.Name!, out vip))
                {
                    return Socks5ReplyCode.HostUnreachable;
                }

                break;
            default:
                return Socks5ReplyCode.AddressTypeNotSupported;
        }

        return overlay.Network.IsVirtual(vip) ? Socks5ReplyCode.Succeeded : Socks5ReplyCode.NotAllowedByRuleset;
    }

    private async Task HandleAsync(Socket client, CancellationToken cancellationToken)
    {
        try
        {
            if (Interlocked.Increment(ref _connections) > _options.MaxConnections)
            {
                _logger.LogWarning("SOCKS: refused a connection from {Client}: {Max} connections are open", AcceptLoop.Describe(client), _options.MaxConnections);
                client.Dispose();
                return;
            }

            await ServeAsync(client, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The agent is stopping (e.g. during a dial): end quietly.
            RelayEndpoint.Abort(client);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug of ours, not the client's: still only this connection ends.
            _logger.LogWarning(e, "SOCKS: connection from {Client} failed", AcceptLoop.Describe(client));
            RelayEndpoint.Abort(client);
        }
        finally
        {
            Interlocked.Decrement(ref _connections);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        client.NoDelay = true;
        var remote = (IPEndPoint)client.RemoteEndPoint!;
        var local = (IPEndPoint)client.LocalEndPoint!;
        Socks5Command command;
        Socks5Destination destination;
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            deadline.CancelAfter(_options.HandshakeTimeout);
            try
            {
                var buffer = new byte[Socks5Handshake.MaxFrameLength];
                var noAuthOffered = await Socks5Handshake.ReadGreetingAsync(client, buffer, deadline.Token).ConfigureAwait(false);
                var owner = SocketOwners.TcpOwner(remote, local);
                if (owner != _allowedUid)
                {
                    _logger.LogWarning("SOCKS: refused {Client}: its socket is owned by uid {Uid}, only uid {Allowed} may use this proxy",
                        remote, owner?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(not found)", _allowedUid);
                    await RefuseAsync(client, [Socks5Handshake.Version, Socks5Handshake.NoAcceptableMethods], cancellationToken).ConfigureAwait(false);
                    return;
                }

                if (!noAuthOffered)
                {
                    _logger.LogInformation("SOCKS: refused {Client}: it does not offer 'no authentication', the only method served", remote);
                    await RefuseAsync(client, [Socks5Handshake.Version, Socks5Handshake.NoAcceptableMethods], cancellationToken).ConfigureAwait(false);
                    return;
                }

                await client.SendAsync(new byte[] { Socks5Handshake.Version, Socks5Handshake.NoAuthentication }, SocketFlags.None, deadline.Token).ConfigureAwait(false);
                (command, destination) = await Socks5Handshake.ReadRequestAsync(client, buffer, deadline.Token).ConfigureAwait(false);
            }
            catch (ProtocolException e)
            {
                _logger.LogInformation("SOCKS: closed {Client}: {Reason}", remote, e.Message);
                RelayEndpoint.Abort(client);
                return;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                _logger.LogInformation("SOCKS: closed {Client}: no complete handshake within {Seconds:0.###} s", remote, _options.HandshakeTimeout.TotalSeconds);
                RelayEndpoint.Abort(client);
                return;
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
            {
                _logger.LogDebug("SOCKS: {Client} went away during the handshake ({Reason})", remote, e.Message);
                RelayEndpoint.Abort(client);
                return;
            }
        }

        switch (command)
        {
            case Socks5Command.Connect:
                await ConnectAsync(client, remote, destination, cancellationToken).ConfigureAwait(false);
                break;
            case Socks5Command.UdpAssociate:
                await AssociateAsync(client, remote, local, cancellationToken).ConfigureAwait(false);
                break;
            default:
                _logger.LogInformation("SOCKS: {Client} asked for command {Command}; only CONNECT and UDP ASSOCIATE are served", remote, (byte)command);
                await RefuseAsync(client, Socks5Reply.Failure(Socks5ReplyCode.CommandNotSupported), cancellationToken).ConfigureAwait(false);
                break;
        }
    }

    private async Task ConnectAsync(Socket client, IPEndPoint remote, Socks5Destination requested, CancellationToken cancellationToken)
    {
        var code = ResolveDestination(_overlay, requested, out var vip);
        if (code != Socks5ReplyCode.Succeeded)
        {
            LogRefusedDestination(remote, requested, code);
            await RefuseAsync(client, Socks5Reply.Failure(code), cancellationToken).ConfigureAwait(false);
            return;
        }

        var destination = new VirtualEndpoint(vip, requested.Port);
        SourcePortReservation reservation;
        try
        {
            reservation = SourcePortReservation.Bind(_overlay.Network, _overlay.Vip);
        }
        catch (SocketException e)
        {
            _logger.LogWarning("SOCKS: {Client} CONNECT {Destination}: no source port on image of own VIP ({Error})", remote, destination, e.SocketErrorCode);
            await RefuseAsync(client, Socks5Reply.Failure(Socks5ReplyCode.GeneralFailure), cancellationToken).ConfigureAwait(false);
            return;
        }

        using (reservation)
        {
            var source = new VirtualEndpoint(_overlay.Vip, reservation.Port);
            var dial = destination.Address == _overlay.Vip
                ? await ConnectToOwnVipAsync(reservation, destination, cancellationToken).ConfigureAwait(false)
                : await _overlay.DialAsync(source, destination, cancellationToken).ConfigureAwait(false);
            if (dial.Endpoint is null)
            {
                var failure = Socks5Reply.FromLegStatus(dial.Status);
                if (failure == Socks5ReplyCode.Succeeded)
                {
                    failure = Socks5ReplyCode.GeneralFailure; // "Ok" without an endpoint: never expected, never a success
                }

                _logger.LogInformation("SOCKS: {Client} CONNECT {Destination} (asked {Requested}) failed: {Status} ({Detail}); reply {Reply}",
                    remote, destination, requested, dial.Status, dial.Detail, failure);
                await RefuseAsync(client, Socks5Reply.Failure(failure), cancellationToken).ConfigureAwait(false);
                return;
            }

            var program = new RelayEndpoint(client);
            try
            {
                await client.SendAsync(Socks5Reply.Encode(Socks5ReplyCode.Succeeded, IPv4.ToIPAddress(_overlay.Vip), reservation.Port), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                program.Abort();
                dial.Endpoint.Abort();
                return;
            }

            _logger.LogDebug("SOCKS: stream {Client} as {Source} -> {Destination} open", remote, source, destination);
            var result = await StreamRelay.RunAsync(program, dial.Endpoint, cancellationToken).ConfigureAwait(false);
            _logger.LogDebug("SOCKS: stream {Source} -> {Destination} closed: {Up} B up, {Down} B down{Failed}",
                source, destination, result.BytesAToB, result.BytesBToA, result.Failed ? ", reset" : "");
        }
    }

    /// <summary>Own VIP: connect the reserved socket straight to the image, as the shim does for programs.</summary>
    private async Task<LegDialResult> ConnectToOwnVipAsync(SourcePortReservation reservation, VirtualEndpoint destination, CancellationToken cancellationToken)
    {
        var target = new IPEndPoint(IPv4.ToIPAddress(_overlay.Network.ToImage(destination.Address)), destination.Port);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.LocalConnectTimeout);
        try
        {
            await reservation.Socket.ConnectAsync(target, deadline.Token).ConfigureAwait(false);
            return new LegDialResult(LegStatus.Ok, new RelayEndpoint(reservation.Socket), "");
        }
        catch (SocketException e)
        {
            return new LegDialResult(LegStatusErrno.FromSocketError(e.SocketErrorCode), null, $"connect to {target}: {e.SocketErrorCode}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new LegDialResult(LegStatus.TimedOut, null, $"connect to {target}: no answer within {_options.LocalConnectTimeout.TotalSeconds:0} s");
        }
    }

    private async Task AssociateAsync(Socket client, IPEndPoint remote, IPEndPoint local, CancellationToken cancellationToken)
    {
        // The request's DST is the client's guess of its own UDP address (RFC 1928 allows ignoring it); the
        // association learns the real one from the first datagram instead, which works behind any bind.
        Socks5UdpAssociation association;
        try
        {
            association = Socks5UdpAssociation.Open(local, remote, _overlay, _allowedUid, _logger);
        }
        catch (SocketException e)
        {
            _logger.LogWarning("SOCKS: {Client} UDP ASSOCIATE: cannot bind the relay sockets ({Error})", remote, e.SocketErrorCode);
            await RefuseAsync(client, Socks5Reply.Failure(Socks5ReplyCode.GeneralFailure), cancellationToken).ConfigureAwait(false);
            return;
        }

        using (association)
        {
            try
            {
                await client.SendAsync(Socks5Reply.Encode(Socks5ReplyCode.Succeeded, association.ClientFacing.Address, (ushort)association.ClientFacing.Port),
                    SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                RelayEndpoint.Abort(client);
                return;
            }

            _logger.LogDebug("SOCKS: UDP association {Client} as {Overlay} open (client side {ClientFacing})", remote, association.Overlay, association.ClientFacing);
            await association.RunAsync(client, cancellationToken).ConfigureAwait(false);
            _logger.LogDebug("SOCKS: UDP association {Overlay} closed", association.Overlay);
        }

        client.Dispose();
    }

    private void LogRefusedDestination(IPEndPoint client, Socks5Destination requested, Socks5ReplyCode code)
    {
        var reason = code switch
        {
            Socks5ReplyCode.NotAllowedByRuleset => "not a VIP of the cluster network; only overlay destinations are served",
            Socks5ReplyCode.HostUnreachable => "no node has that name",
            Socks5ReplyCode.AddressTypeNotSupported => "IPv6 and unknown address types are not served",
            _ => code.ToString(),
        };
        _logger.LogInformation("SOCKS: {Client} CONNECT {Destination} refused ({Reply}): {Reason}", client, requested, code, reason);
    }

    /// <summary>
    /// Sends a final answer and closes cleanly: FIN first, then a short bounded drain, because closing with
    /// unread bytes would send a reset that can destroy the answer before the client reads it.
    /// </summary>
    private static async Task RefuseAsync(Socket client, byte[] answer, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(DrainTime);
        try
        {
            await client.SendAsync(answer, SocketFlags.None, deadline.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
            var sink = new byte[512];
            for (var i = 0; i < 64 && await client.ReceiveAsync(sink, SocketFlags.None, deadline.Token).ConfigureAwait(false) > 0; i++)
            {
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            client.Dispose();
        }
    }
}
