using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Wire;

namespace Isthmus.Core.Relay;

/// <summary>
/// Opens a relay leg to the next hop: TCP connect, optional TLS, leg header, then the hop's reply. The reply
/// comes only after the hop has opened its own next leg, so the status is the end-to-end result.
/// </summary>
public static class LegConnector
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    /// <param name="secure">Wraps the connected socket (e.g. TLS client handshake); null for cleartext.</param>
    public static async Task<LegDialResult> DialAsync(
        IPEndPoint target,
        byte[] header,
        Func<Socket, CancellationToken, Task<Stream>>? secure,
        TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            try
            {
                await socket.ConnectAsync(target, deadline.Token).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                // The next hop (a router or agent) is not there: for the program that is an unreachable host.
                var status = e.SocketErrorCode == SocketError.TimedOut ? LegStatus.TimedOut : LegStatus.HostUnreachable;
                return new LegDialResult(status, null, $"connect to {target}: {e.SocketErrorCode}");
            }

            stream = secure is null ? new NetworkStream(socket, ownsSocket: false) : await secure(socket, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await DisposeQuietlyAsync(stream, socket).ConfigureAwait(false);
            return new LegDialResult(LegStatus.TimedOut, null, $"{target}: no answer within {timeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (e is IOException or SocketException or System.Security.Authentication.AuthenticationException)
        {
            await DisposeQuietlyAsync(stream, socket).ConfigureAwait(false);
            return new LegDialResult(LegStatus.HostUnreachable, null, $"{target}: {e.Message}");
        }
        catch
        {
            await DisposeQuietlyAsync(stream, socket).ConfigureAwait(false);
            throw;
        }

        return await ExchangeAsync(new RelayEndpoint(socket, stream), header, target.ToString(), timeout, cancellationToken, deadline.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// Opens a leg over a connection the caller already has (a new TCP connection, or a trunk's virtual stream):
    /// sends the header and reads the hop's reply. The leg is disposed unless the answer is Ok.
    /// </summary>
    public static async Task<LegDialResult> OpenAsync(RelayEndpoint leg, byte[] header, string target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        return await ExchangeAsync(leg, header, target, timeout, cancellationToken, deadline.Token).ConfigureAwait(false);
    }

    /// <param name="deadline">The caller's token with the dial timeout applied.</param>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1068", Justification = "two tokens: the caller's and its deadline")]
    private static async Task<LegDialResult> ExchangeAsync(RelayEndpoint leg, byte[] header, string target, TimeSpan timeout, CancellationToken cancellationToken, CancellationToken deadline)
    {
        try
        {
            await leg.Stream.WriteAsync(header, deadline).ConfigureAwait(false);
            await leg.Stream.FlushAsync(deadline).ConfigureAwait(false);
            var reply = new byte[LegReply.Size];
            if (!await StreamIo.ReadExactOrEndAsync(leg.Stream, reply, deadline).ConfigureAwait(false))
            {
                throw new ProtocolException("next hop closed the leg without a reply");
            }

            if (!LegReply.TryDecode(reply, out var hopStatus))
            {
                throw new ProtocolException("next hop sent an invalid leg reply");
            }

            if (hopStatus != LegStatus.Ok)
            {
                await leg.DisposeAsync().ConfigureAwait(false);
                return new LegDialResult(hopStatus, null, $"{target} answered {hopStatus}");
            }

            return new LegDialResult(LegStatus.Ok, leg, "");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            leg.Abort();
            return new LegDialResult(LegStatus.TimedOut, null, $"{target}: no answer within {timeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (e is IOException or SocketException or ProtocolException or System.Security.Authentication.AuthenticationException)
        {
            leg.Abort();
            return new LegDialResult(LegStatus.HostUnreachable, null, $"{target}: {e.Message}");
        }
        catch
        {
            leg.Abort();
            throw;
        }
    }

    /// <summary>Reads a leg header from a freshly accepted leg, bounded in time (slow senders are cut off).</summary>
    public static async Task<(LegHeader Header, byte[] Raw)> ReadHeaderAsync(Stream stream, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var raw = new byte[LegHeader.Size];
        try
        {
            if (!await StreamIo.ReadExactOrEndAsync(stream, raw, deadline.Token).ConfigureAwait(false))
            {
                throw new ProtocolException("leg closed before its header");
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProtocolException($"no leg header within {timeout.TotalSeconds:0} s");
        }

        if (!LegHeader.TryParse(raw, out var header, out var error))
        {
            throw new ProtocolException(error);
        }

        return (header!, raw);
    }

    public static async Task ReplyAsync(Stream stream, LegStatus status, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(LegReply.Encode(status), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Answers a leg whose dialer may already be gone; false if the answer could not be sent.</summary>
    public static async Task<bool> TryReplyAsync(RelayEndpoint leg, LegStatus status, CancellationToken cancellationToken)
    {
        try
        {
            await ReplyAsync(leg.Stream, status, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    private static async ValueTask DisposeQuietlyAsync(Stream? stream, Socket socket)
    {
        if (stream is not null)
        {
            try
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
            }
        }

        socket.Dispose();
    }
}

public sealed record LegDialResult(LegStatus Status, RelayEndpoint? Endpoint, string Detail);
