using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Addressing;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node.Socks;

/// <summary>
/// One UDP ASSOCIATE: a client-facing UDP socket (where the client sends RFC 1928 datagrams) and an
/// overlay-facing socket bound to image(own VIP):P, the association's address on the overlay. It lives
/// exactly as long as the client's TCP control connection.
/// </summary>
/// <remarks>
/// Client → overlay: the header is stripped and the payload handed to the agent as from own VIP:P.
/// Overlay → client: the agent delivers datagrams for own VIP:P to image(own VIP):P from a socket bound to
/// image(sender VIP):sender port, so the kernel's source address, translated back, is the sender; it goes
/// into the header. Datagrams are accepted only from the address of the client's first datagram, which
/// must come from the control connection's IP and from a UDP socket of the allowed uid.
/// </remarks>
internal sealed class Socks5UdpAssociation : IDisposable
{
    private const int MaxConsecutiveErrors = 64;
    private const int MaxDatagram = 65535;
    private readonly Socket _clientSide;
    private readonly Socket _overlaySide;
    private readonly ISocksOverlay _overlay;
    private readonly IPAddress _clientAddress;
    private readonly uint _allowedUid;
    private readonly ILogger _logger;
    private IPEndPoint? _clientUdp;
    private int _ownerWarned;

    private Socks5UdpAssociation(Socket clientSide, Socket overlaySide, ISocksOverlay overlay, IPAddress clientAddress, uint allowedUid, ILogger logger)
    {
        _clientSide = clientSide;
        _overlaySide = overlaySide;
        _overlay = overlay;
        _clientAddress = clientAddress;
        _allowedUid = allowedUid;
        _logger = logger;
        ClientFacing = (IPEndPoint)clientSide.LocalEndPoint!;
        Overlay = new VirtualEndpoint(overlay.Vip, (ushort)((IPEndPoint)overlaySide.LocalEndPoint!).Port);
    }

    /// <summary>Where the client sends its datagrams (the BND of the reply).</summary>
    public IPEndPoint ClientFacing { get; }

    /// <summary>The association's address on the overlay: own VIP and the port P of the image socket.</summary>
    public VirtualEndpoint Overlay { get; }

    /// <summary>
    /// Binds both sockets. The client-facing one is on the address the client reached the TCP listener at
    /// (the listener's own IP, concrete even when the listener is bound to a wildcard), port 0.
    /// </summary>
    /// <exception cref="SocketException">A socket could not be bound.</exception>
    public static Socks5UdpAssociation Open(IPEndPoint controlLocal, IPEndPoint controlRemote, ISocksOverlay overlay, uint allowedUid, ILogger logger)
    {
        var local = ProcNetSocketTable.Normalize(controlLocal).Address;
        Socket? clientSide = null;
        Socket? overlaySide = null;
        try
        {
            clientSide = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            clientSide.Bind(new IPEndPoint(local, 0));
            overlaySide = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            overlaySide.Bind(new IPEndPoint(IPv4.ToIPAddress(overlay.Network.ToImage(overlay.Vip)), 0));
            return new Socks5UdpAssociation(clientSide, overlaySide, overlay, ProcNetSocketTable.Normalize(controlRemote).Address, allowedUid, logger);
        }
        catch
        {
            clientSide?.Dispose();
            overlaySide?.Dispose();
            throw;
        }
    }

    /// <summary>Relays until the control connection ends (EOF, reset) or <paramref name="cancellationToken"/> fires.</summary>
    public async Task RunAsync(Socket control, CancellationToken cancellationToken)
    {
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var up = ClientToOverlayAsync(ended.Token);
        var down = OverlayToClientAsync(ended.Token);
        await Task.WhenAny(WatchControlAsync(control, ended.Token), up, down).ConfigureAwait(false);
        await ended.CancelAsync().ConfigureAwait(false);
        Dispose();
        await Task.WhenAll(up, down).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _clientSide.Dispose();
        _overlaySide.Dispose();
    }

    /// <summary>RFC 1928: the association ends when the TCP connection does. Bytes on it mean nothing; discard them.</summary>
    private static async Task WatchControlAsync(Socket control, CancellationToken cancellationToken)
    {
        var sink = new byte[512];
        try
        {
            while (await control.ReceiveAsync(sink, SocketFlags.None, cancellationToken).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task ClientToOverlayAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxDatagram];
        var any = new IPEndPoint(_clientSide.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        var errors = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _clientSide.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken).ConfigureAwait(false);
                errors = 0;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (++errors < MaxConsecutiveErrors)
            {
                // e.g. ECONNREFUSED left by an ICMP error for an earlier datagram to a closed client port.
                _logger.LogDebug("SOCKS UDP {Overlay}: receive from client failed ({Error})", Overlay, e.SocketErrorCode);
                continue;
            }
            catch (SocketException e)
            {
                _logger.LogWarning("SOCKS UDP {Overlay}: ending the association after {Count} receive errors ({Error})", Overlay, errors, e.SocketErrorCode);
                return;
            }

            var from = ProcNetSocketTable.Normalize((IPEndPoint)received.RemoteEndPoint);
            if (!AcceptFromClient(from))
            {
                continue;
            }

            var datagram = buffer.AsSpan(0, received.ReceivedBytes);
            if (!Socks5UdpHeader.TryParse(datagram, out var destination, out var headerLength, out var error))
            {
                _logger.LogDebug("SOCKS UDP {Overlay}: dropped a datagram from the client: {Reason}", Overlay, error);
                continue;
            }

            if (Socks5Server.ResolveDestination(_overlay, destination, out var vip) != Socks5ReplyCode.Succeeded)
            {
                _logger.LogDebug("SOCKS UDP {Overlay}: dropped a datagram to {Destination}: not a VIP or unknown name", Overlay, destination);
                continue;
            }

            await ForwardAsync(new VirtualEndpoint(vip, destination.Port), buffer.AsMemory(headerLength, received.ReceivedBytes - headerLength), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ForwardAsync(VirtualEndpoint destination, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (destination.Address != _overlay.Vip)
        {
            _overlay.SendDatagram(Overlay, destination, payload.Span);
            return;
        }

        // Own VIP: straight to the image from our image socket, as the shim does; no agent hop.
        try
        {
            var target = new IPEndPoint(IPv4.ToIPAddress(_overlay.Network.ToImage(destination.Address)), destination.Port);
            await _overlaySide.SendToAsync(payload, SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            _logger.LogDebug("SOCKS UDP {Overlay}: datagram to {Destination} not sent ({Error})", Overlay, destination, e.SocketErrorCode);
        }
    }

    /// <summary>Whether a datagram from <paramref name="from"/> is the client's; the first accepted one fixes the client's address.</summary>
    private bool AcceptFromClient(IPEndPoint from)
    {
        var known = Volatile.Read(ref _clientUdp);
        if (known is not null)
        {
            if (!known.Equals(from))
            {
                _logger.LogDebug("SOCKS UDP {Overlay}: dropped a datagram from {From}, not the client's {Client}", Overlay, from, known);
                return false;
            }

            return true;
        }

        if (!from.Address.Equals(_clientAddress))
        {
            _logger.LogDebug("SOCKS UDP {Overlay}: dropped a datagram from {From}: the client connected from {Client}", Overlay, from, _clientAddress);
            return false;
        }

        // On loopback every local user has the client's IP, so the sending socket's owner is checked too;
        // otherwise another user could race the client's first datagram and speak as this node.
        var owners = SocketOwners.UdpOwners(from);
        if (owners.Count == 0 || owners.Any(uid => uid != _allowedUid))
        {
            var level = Interlocked.Exchange(ref _ownerWarned, 1) == 0 ? LogLevel.Warning : LogLevel.Debug;
            _logger.Log(level, "SOCKS UDP {Overlay}: dropped a datagram from {From}: its socket is owned by uid {Uids}, not {Allowed}",
                Overlay, from, owners.Count == 0 ? "(not found)" : string.Join(",", owners), _allowedUid);
            return false;
        }

        Volatile.Write(ref _clientUdp, from);
        _logger.LogDebug("SOCKS UDP {Overlay}: client is {Client}", Overlay, from);
        return true;
    }

    private async Task OverlayToClientAsync(CancellationToken cancellationToken)
    {
        // Received straight after room for the header, so wrapping copies nothing.
        var buffer = new byte[Socks5UdpHeader.IPv4Length + MaxDatagram];
        var any = new IPEndPoint(IPAddress.Any, 0);
        var errors = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _overlaySide.ReceiveFromAsync(buffer.AsMemory(Socks5UdpHeader.IPv4Length), SocketFlags.None, any, cancellationToken).ConfigureAwait(false);
                errors = 0;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (++errors < MaxConsecutiveErrors)
            {
                _logger.LogDebug("SOCKS UDP {Overlay}: receive from the overlay failed ({Error})", Overlay, e.SocketErrorCode);
                continue;
            }
            catch (SocketException e)
            {
                _logger.LogWarning("SOCKS UDP {Overlay}: ending the association after {Count} receive errors ({Error})", Overlay, errors, e.SocketErrorCode);
                return;
            }

            var from = (IPEndPoint)received.RemoteEndPoint;
            if (!TryTranslateSender(from, out var sender))
            {
                _logger.LogDebug("SOCKS UDP {Overlay}: dropped a datagram from {From}: not an overlay address", Overlay, from);
                continue;
            }

            var client = Volatile.Read(ref _clientUdp);
            if (client is null)
            {
                _logger.LogDebug("SOCKS UDP {Overlay}: dropped a datagram from {Sender}: the client has not sent yet, so its address is unknown", Overlay, sender);
                continue;
            }

            Socks5UdpHeader.WriteIPv4(buffer, sender);
            try
            {
                await _clientSide.SendToAsync(buffer.AsMemory(0, Socks5UdpHeader.IPv4Length + received.ReceivedBytes), SocketFlags.None, client, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                // EMSGSIZE for a full-size datagram plus our header, or the client's socket is gone: UDP drops.
                _logger.LogDebug("SOCKS UDP {Overlay}: datagram from {Sender} not delivered to the client ({Error})", Overlay, sender, e.SocketErrorCode);
            }
        }
    }

    /// <summary>
    /// The sender's VIP from the kernel's source address: an image is a VIP's; 127.0.0.1 is a program of this
    /// node that sent from the wildcard (the shim's rule). Anything else did not come through the overlay.
    /// </summary>
    private bool TryTranslateSender(IPEndPoint from, out VirtualEndpoint sender)
    {
        sender = default;
        var address = from.Address;
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        var value = IPv4.ToUInt32(address);
        if (_overlay.Network.IsImage(value))
        {
            sender = new VirtualEndpoint(_overlay.Network.FromImage(value), (ushort)from.Port);
            return true;
        }

        if (value == 0x7F000001)
        {
            sender = new VirtualEndpoint(_overlay.Vip, (ushort)from.Port);
            return true;
        }

        return false;
    }
}
