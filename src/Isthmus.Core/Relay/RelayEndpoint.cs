using System.Net.Security;
using System.Net.Sockets;

namespace Isthmus.Core.Relay;

/// <summary>
/// One side of a relay: a connected socket, optionally wrapped in TLS, or a virtual stream carried by a WAN
/// trunk (<see cref="ICarriedConnection"/>). Knows how to propagate a half-close (FIN) and a reset, which plain
/// <see cref="Stream"/> cannot express.
/// </summary>
public sealed class RelayEndpoint : IAsyncDisposable
{
    private readonly ICarriedConnection? _carried;
    private int _disposed;

    public RelayEndpoint(Socket socket, Stream? stream = null)
    {
        Socket = socket;
        Stream = stream ?? new NetworkStream(socket, ownsSocket: false);
    }

    /// <summary>A leg carried inside another connection: the stream is also the connection.</summary>
    public RelayEndpoint(Stream stream, ICarriedConnection connection)
    {
        Stream = stream;
        _carried = connection;
    }

    /// <summary>The leg's own socket; null for a carried leg.</summary>
    public Socket? Socket { get; }

    public Stream Stream { get; }

    public bool IsTls => Stream is SslStream;

    /// <summary>True when the carrier (a trunk) watches liveness: the leg needs no keepalive or dead timer of its own.</summary>
    public bool IsCarried => _carried is not null;

    /// <summary>Bytes the socket holds unread (0 for a carried leg, whose reads never wait in the kernel).</summary>
    public int Available => Socket is { } socket && !IsTls ? socket.Available : 0;

    /// <summary>The peer's address for log lines, also after the socket was closed.</summary>
    public string RemoteDescription => _carried?.Description ?? AcceptLoop.Describe(Socket!);

    /// <summary>
    /// Sends our end-of-stream (a TCP FIN) while still reading. On TLS legs this deliberately sends no
    /// close_notify: .NET's SslStream on OpenSSL is not safe against a shutdown racing a read on the other
    /// direction ("wrong version number" from SSL_shutdown, seen in CI), and the peer's SslStream reads a
    /// FIN as end of stream anyway. An on-path attacker who can inject a FIN could equally inject a reset.
    /// </summary>
    public ValueTask ShutdownSendAsync()
    {
        if (_carried is not null)
        {
            _carried.ShutdownSend();
            return ValueTask.CompletedTask;
        }

        var socket = Socket!;
        if (Emulation.EmulatedSendStream.TryFor(socket, out var emulated))
        {
            // Behind the bytes the WAN emulator still holds, as a real link would deliver them.
            emulated!.ShutdownSend();
            return ValueTask.CompletedTask;
        }

        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The peer is already gone; the other direction will see it.
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Closes with a reset (SO_LINGER 0) so the far program sees ECONNRESET, not a clean end.</summary>
    public void Abort()
    {
        if (_carried is not null)
        {
            _carried.Abort();
            return;
        }

        Abort(Socket!);
    }

    /// <summary>
    /// Resets and closes <paramref name="socket"/>. Static, for sockets that cannot become an endpoint: one that a
    /// handshake guard shut down is no longer connected, and NetworkStream's constructor refuses it.
    /// </summary>
    public static void Abort(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await Stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }

        Socket?.Dispose();
    }
}
