using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Relay;

/// <summary>
/// Accepts connections until cancelled and hands each to a handler on the thread pool. Errors are
/// classified as Kestrel does: "stopped" ends the loop, resource pressure backs off (100 ms doubling to
/// 5 s), anything else is logged and the loop goes on. A handler's failure never stops the listener.
/// </summary>
public static class AcceptLoop
{
    public static async Task RunAsync(Socket listener, Func<Socket, CancellationToken, Task> handler, ILogger logger, CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                logger.LogWarning("Accept on {Endpoint} failed ({Error}); backing off {Delay} ms", listener.LocalEndPoint, e.SocketErrorCode, backoff.TotalMilliseconds);
                await Task.Delay(backoff, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                continue;
            }
            catch (SocketException e)
            {
                logger.LogDebug("Accept on {Endpoint} failed: {Error}", listener.LocalEndPoint, e.SocketErrorCode);
                continue;
            }

            _ = HandleAsync(accepted, handler, logger, cancellationToken);
        }
    }

    /// <summary>
    /// One connection's handler, on the thread pool. A method rather than Task.Run of a lambda: its frame lives
    /// as long as the connection, and the lambda's closure, delegate and unwrapping task were held per
    /// connection too (thousands of idle relayed streams).
    /// </summary>
    private static async Task HandleAsync(Socket accepted, Func<Socket, CancellationToken, Task> handler, ILogger logger, CancellationToken cancellationToken)
    {
        // Off the accept loop's thread before the handler runs any of its code.
        await Task.Yield();
        try
        {
            await handler(accepted, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Connection from {Remote} failed", Describe(accepted));
            accepted.Dispose();
        }
    }

    /// <summary>Reads the first byte without consuming it, bounded in time, so one port can serve TLS and legs.</summary>
    public static async Task<int> PeekFirstByteAsync(Socket socket, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var one = new byte[1];
        try
        {
            var n = await socket.ReceiveAsync(one, SocketFlags.Peek, deadline.Token).ConfigureAwait(false);
            return n == 0 ? -1 : one[0];
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return -1;
        }
    }

    public static Socket Listen(System.Net.IPEndPoint endpoint, int backlog = 1024)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(endpoint);
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The peer's address for log lines, also after the socket was closed.</summary>
    public static string Describe(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint?.ToString() ?? "?";
        }
        catch (ObjectDisposedException)
        {
            return "?";
        }
    }
}
