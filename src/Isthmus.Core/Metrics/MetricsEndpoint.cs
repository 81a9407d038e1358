using System.Net;
using System.Net.Sockets;
using System.Text;
using Isthmus.Core.Relay;
using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Metrics;

/// <summary>
/// Serves <c>GET /metrics</c> in the Prometheus text format. prometheus-net does not restore here, and the
/// exposition format is a few lines of text, so this is a minimal HTTP/1.1 responder: bounded request size
/// and time, one response per connection.
/// </summary>
public sealed class MetricsEndpoint(Func<string> render, ILogger logger)
{
    private const int MaxRequest = 8192;

    /// <summary>Scrapes served at once; a scraper needs one. Beyond it a connection is closed at once, so a flood costs at most 32 × 8 KiB.</summary>
    public const int MaxConcurrent = 32;

    private int _serving;

    public static Socket Bind(IPEndPoint endpoint)
    {
        try
        {
            return AcceptLoop.Listen(endpoint, backlog: 64);
        }
        catch (SocketException e)
        {
            throw new UserException($"cannot serve metrics on {endpoint}: {e.Message}", e, 1);
        }
    }

    public Task RunAsync(Socket listener, CancellationToken cancellationToken) =>
        AcceptLoop.RunAsync(listener, ServeAsync, logger, cancellationToken);

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _serving) > MaxConcurrent)
        {
            Interlocked.Decrement(ref _serving);
            client.Dispose();
            return;
        }

        try
        {
            await ServeOneAsync(client, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _serving);
        }
    }

    private async Task ServeOneAsync(Socket client, CancellationToken cancellationToken)
    {
        using (client)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(5));
            var buffer = new byte[MaxRequest];
            var read = 0;
            try
            {
                while (read < buffer.Length && buffer.AsSpan(0, read).IndexOf("\r\n\r\n"u8) < 0)
                {
                    var n = await client.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }

                    read += n;
                }

                var requestLine = Encoding.ASCII.GetString(buffer, 0, Math.Max(0, buffer.AsSpan(0, read).IndexOf("\r\n"u8)));
                var (status, body, type) = requestLine.StartsWith("GET /metrics ", StringComparison.Ordinal)
                    ? ("200 OK", render(), "text/plain; version=0.0.4; charset=utf-8")
                    : ("404 Not Found", "only GET /metrics is served here\n", "text/plain; charset=utf-8");
                var bodyBytes = Encoding.UTF8.GetBytes(body);
                var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {bodyBytes.Length}\r\nConnection: close\r\n\r\n");
                await client.SendAsync(head, SocketFlags.None, deadline.Token).ConfigureAwait(false);
                await client.SendAsync(bodyBytes, SocketFlags.None, deadline.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                // A scraper that went away or stalled: nothing to do.
            }
        }
    }
}
