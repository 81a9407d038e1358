using System.Net.Sockets;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node;

/// <summary>
/// Serves the preload shim on an AF_UNIX SOCK_SEQPACKET socket: one request and one answer per
/// connection, so the shim holds no descriptor across calls (fork, exec and close_range cannot break it).
/// </summary>
internal sealed class ShimControlServer(string path, Func<ShimRequest, int, CancellationToken, Task<ShimReply>> handle, ILogger logger) : IDisposable
{
    /// <summary>
    /// Requests served at once. A blocking CONNECT holds its request while the path is dialled (up to 15 s), so
    /// this is the number of connects that can be in flight; beyond it a request is closed unanswered (the shim
    /// reports ENETUNREACH) rather than queued without bound. The socket is 0600, so only this user can flood it.
    /// </summary>
    public const int MaxInFlight = 4096;

    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
    private readonly Core.Logging.RateLimitedLog _offenders = new(logger);
    private int _inFlight;

    public void Start()
    {
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        _listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(512);
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                logger.LogDebug("Shim accept failed: {Error}", e.SocketErrorCode);
                continue;
            }

            if (Interlocked.Increment(ref _inFlight) > MaxInFlight)
            {
                Interlocked.Decrement(ref _inFlight);
                _offenders.Warning("Closed a shim request unanswered: {Max} requests are in flight", MaxInFlight);
                client.Dispose();
                continue;
            }

            // Served inline up to its first wait: most requests (DIRECT, ADOPT of a stream already answered, PEER, names)
            // complete without one, so a connect costs no extra thread-pool hop; one that waits (a blocking CONNECT,
            // an early ADOPT) returns here at that point and the loop accepts the next request.
            _ = ServeCountedAsync(client, cancellationToken);
        }
    }

    private async Task ServeCountedAsync(Socket client, CancellationToken cancellationToken)
    {
        try
        {
            await ServeAsync(client, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <summary>The calling process (SO_PEERCRED: the PID that connected); 0 if the kernel does not say.</summary>
    private static int PeerPid(Socket client)
    {
        const int SolSocket = 1, SoPeerCred = 17;
        Span<byte> credentials = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            return client.GetRawSocketOption(SolSocket, SoPeerCred, credentials) >= 4 ? BitConverter.ToInt32(credentials) : 0;
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        using (client)
        {
            try
            {
                var buffer = new byte[ShimRequest.Size + ShimRequest.MaxPayload + 1];
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(TimeSpan.FromSeconds(5));
                var n = await client.ReceiveAsync(buffer, SocketFlags.None, deadline.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    return; // a liveness probe (isthmus run, a second agent): connect and close
                }

                if (!ShimRequest.TryParse(buffer.AsSpan(0, n), out var request))
                {
                    _offenders.Warning("Ignored a malformed shim request ({Bytes} bytes)", n);
                    return;
                }

                var reply = await handle(request, PeerPid(client), cancellationToken).ConfigureAwait(false);
                var answer = new byte[reply.Response.Length];
                reply.Response.Write(answer);
                if (reply.Pass is null)
                {
                    await client.SendAsync(answer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    return;
                }

                try
                {
                    if (!DescriptorPassing.Send(client, answer, reply.Pass))
                    {
                        _offenders.Warning("Could not pass a direct stream's socket to the program (errno {Errno})", System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
                    }
                }
                finally
                {
                    reply.AfterSend?.Invoke();
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The program went away mid-request (or we are stopping); nothing to answer.
            }
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
