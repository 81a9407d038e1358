using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Wire;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// The resume leg of a stream: the dialling router sends a leg header with <see cref="ResumableFlags.Resume"/>
/// (same stream id, fresh timestamp, MAC under the router secret, inside mutual TLS unless the cluster
/// uses cleartext WAN legs) followed by a Resume frame with its receive count; the accepting router
/// answers with a leg reply (Ok, or Refused for a stream it does not know) and, if Ok, its own Resume
/// frame. Then both resend from the other's count.
/// </summary>
public static class ResumeHandshake
{
    /// <summary>Dials a resume leg; never throws for network trouble (that is <see cref="ResumeDialStatus.Failed"/>).</summary>
    public static async Task<ResumeDial> DialAsync(IPEndPoint target, byte[] header, long received,
        Func<Socket, CancellationToken, Task<Stream>>? secure, CancellationToken cancellationToken)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(target, cancellationToken).ConfigureAwait(false);
            stream = secure is null ? new NetworkStream(socket, ownsSocket: false) : await secure(socket, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Close(stream, socket);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return ResumeDial.Failed($"{target}: {e.Message}");
        }

        return await ResumeOverAsync(new RelayEndpoint(socket, stream), header, received, target.ToString(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The resume exchange over a connection the caller already has (a new TCP connection, or a trunk's virtual
    /// stream); never throws for network trouble. The leg is closed unless the peer took it.
    /// </summary>
    public static async Task<ResumeDial> ResumeOverAsync(RelayEndpoint leg, byte[] header, long received, string target, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(leg);
        ArgumentNullException.ThrowIfNull(header);
        var stream = leg.Stream;
        try
        {
            var hello = new byte[header.Length + ResumableFrame.ControlSize];
            header.CopyTo(hello, 0);
            ResumableFrame.WriteCount(hello.AsSpan(header.Length), ResumableFrameType.Resume, received);
            await stream.WriteAsync(hello, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            var reply = new byte[LegReply.Size];
            if (!await StreamIo.ReadExactOrEndAsync(stream, reply, cancellationToken).ConfigureAwait(false) || !LegReply.TryDecode(reply, out var status))
            {
                throw new ProtocolException("no valid leg reply to a resume");
            }

            if (status != LegStatus.Ok)
            {
                leg.Abort();
                return status == LegStatus.Refused ? ResumeDial.Refused($"{target} answered {status}") : ResumeDial.Failed($"{target} answered {status}");
            }

            var peerReceived = await ReadResumeFrameAsync(stream, cancellationToken).ConfigureAwait(false);
            return new ResumeDial(ResumeDialStatus.Connected, leg, peerReceived, "");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            leg.Abort();
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return ResumeDial.Failed($"{target}: {e.Message}");
        }
    }

    /// <summary>Reads the peer's Resume frame; <see cref="ProtocolException"/> if it is something else.</summary>
    public static async Task<long> ReadResumeFrameAsync(Stream stream, CancellationToken cancellationToken)
    {
        var frame = new byte[ResumableFrame.ControlSize];
        if (!await StreamIo.ReadExactOrEndAsync(stream, frame, cancellationToken).ConfigureAwait(false))
        {
            throw new ProtocolException("leg closed before the resume frame");
        }

        if (!ResumableFrame.TryParseHeader(frame, out var type, out _, out var error) || type != ResumableFrameType.Resume)
        {
            throw new ProtocolException(error.Length > 0 ? error : $"expected a resume frame, got {type}");
        }

        var count = ResumableFrame.ReadCount(frame.AsSpan(ResumableFrame.HeaderSize));
        return count >= 0 ? count : throw new ProtocolException($"negative receive count {count}");
    }

    /// <summary>The accepting router's answer: leg reply Ok, then its Resume frame.</summary>
    public static byte[] AcceptReply(long received)
    {
        var bytes = new byte[LegReply.Size + ResumableFrame.ControlSize];
        LegReply.Encode(LegStatus.Ok).CopyTo(bytes, 0);
        ResumableFrame.WriteCount(bytes.AsSpan(LegReply.Size), ResumableFrameType.Resume, received);
        return bytes;
    }

    private static void Close(Stream? stream, Socket socket)
    {
        try
        {
            stream?.Dispose();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }
}
