using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging.Abstractions;

namespace Isthmus.Core.Tests.Relay.Resumable;

/// <summary>
/// Two resumable sessions on real loopback sockets, as two routers would run them: program A ⇄ dialer
/// session ⇄ (first leg through a <see cref="CuttingProxy"/>) ⇄ acceptor session ⇄ program B. Resume legs go
/// straight to a listener that authenticates the header (HMAC) and offers the leg to the acceptor, as the
/// router does.
/// </summary>
internal sealed class ResumableHarness : IAsyncDisposable
{
    private static readonly byte[] Key = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private long _lastTimestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public static ResumableOptions TestOptions { get; } = new()
    {
        Keepalive = TimeSpan.FromMilliseconds(200),
        DeadAfter = TimeSpan.FromSeconds(3),
        RedialFirst = TimeSpan.FromMilliseconds(10),
        RedialMax = TimeSpan.FromMilliseconds(200),
        RedialTimeout = TimeSpan.FromSeconds(5),
        OutageMax = TimeSpan.FromSeconds(30),
        StreamBuffer = 1024 * 1024,
    };

    private ResumableHarness(ResumableOptions options)
    {
        Options = options;
        Budget = new BufferBudget(options.BufferBudget);
        _listener = AcceptLoop.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        _accepting = AcceptResumesAsync();
    }

    public ResumableOptions Options { get; }

    public BufferBudget Budget { get; }

    public Guid StreamId { get; } = Guid.NewGuid();

    public required Socket ProgramA { get; init; }

    public required Socket ProgramB { get; init; }

    public ResumableSession Dialer { get; private set; } = null!;

    public ResumableSession Acceptor { get; private set; } = null!;

    public Task<SessionEnd> DialerRun { get; private set; } = null!;

    public Task<SessionEnd> AcceptorRun { get; private set; } = null!;

    /// <summary>When false, resume legs are answered "unknown stream", as a restarted router would.</summary>
    public bool AcceptResumes { get; set; } = true;

    /// <summary>When true, resume legs are closed without an answer, as during an outage.</summary>
    public bool Unreachable { get; set; }

    /// <summary>Starts both sessions on first legs that run through <paramref name="proxy"/> (made from the two leg ends).</summary>
    /// <param name="spool">The dialling router's spool (program A's bytes spill there while the leg is down), or none.</param>
    public static async Task<ResumableHarness> StartAsync(Func<Socket, Socket, CuttingProxy> proxy, ResumableOptions? options = null, Spool? spool = null)
    {
        var (programA, lanA) = await LoopbackSockets.PairAsync();
        var (lanB, programB) = await LoopbackSockets.PairAsync();
        var (dialerLeg, proxyNearDialer) = await LoopbackSockets.PairAsync();
        var (proxyNearAcceptor, acceptorLeg) = await LoopbackSockets.PairAsync();
        var harness = new ResumableHarness(options ?? TestOptions) { ProgramA = programA, ProgramB = programB };
        harness.Proxy = proxy(proxyNearDialer, proxyNearAcceptor);
        harness.Dialer = new ResumableSession(harness.StreamId, new RelayEndpoint(lanA), harness.Options, harness.Budget, NullLogger.Instance, harness.RedialAsync, spool: spool);
        harness.Acceptor = new ResumableSession(harness.StreamId, new RelayEndpoint(lanB), harness.Options, harness.Budget, NullLogger.Instance, redial: null, openedAtMs: harness._lastTimestamp);
        harness.DialerRun = harness.Dialer.RunAsync(new RelayEndpoint(dialerLeg), CancellationToken.None);
        harness.AcceptorRun = harness.Acceptor.RunAsync(new RelayEndpoint(acceptorLeg), CancellationToken.None);
        return harness;
    }

    public CuttingProxy Proxy { get; private set; } = null!;

    /// <summary>A resume header exactly as the router builds it (strictly increasing timestamps).</summary>
    public byte[] ResumeHeader(long? timestampMs = null)
    {
        var ts = timestampMs ?? (_lastTimestamp = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), _lastTimestamp + 1));
        return new LegHeader(LegKind.TcpStream, ResumableFlags.Framed | ResumableFlags.Resume, StreamId,
            new VirtualEndpoint(0x64400102, 40000), new VirtualEndpoint(0x64400202, 5000), ts, 1).ToBytes(Key);
    }

    public IPEndPoint ResumeEndpoint => (IPEndPoint)_listener.LocalEndPoint!;

    private Task<ResumeDial> RedialAsync(long received, CancellationToken cancellationToken) =>
        ResumeHandshake.DialAsync(ResumeEndpoint, ResumeHeader(), received, secure: null, cancellationToken);

    private async Task AcceptResumesAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                var leg = new RelayEndpoint(socket);
                if (Unreachable)
                {
                    leg.Abort();
                    return;
                }

                try
                {
                    var (header, raw) = await LegConnector.ReadHeaderAsync(leg.Stream, TimeSpan.FromSeconds(10), _stop.Token);
                    var received = await ResumeHandshake.ReadResumeFrameAsync(leg.Stream, _stop.Token);
                    if (LegHeader.VerifyMac(raw, Key) && header.StreamId == StreamId && AcceptResumes && Acceptor.TryOffer(leg, received, header.TimestampMs))
                    {
                        return;
                    }

                    await LegConnector.TryReplyAsync(leg, LegStatus.Refused, _stop.Token);
                    leg.Abort();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    leg.Abort();
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        Proxy.Dispose();
        ProgramA.Dispose();
        ProgramB.Dispose();
        _stop.Dispose();
    }
}

/// <summary>
/// Sits on a first leg. One direction is metered: it forwards exactly <c>cutAfter</c> units (program bytes,
/// the FIN counts one) of data, re-framed, plus every control frame before that point, then ends the leg
/// towards the receiver with a FIN (so the receiver has delivered exactly those units) and resets the other
/// side. The other direction is copied unchanged until then.
/// </summary>
internal sealed class CuttingProxy : IDisposable
{
    private readonly Socket _fromSender;
    private readonly Socket _toReceiver;
    private readonly long _cutAfter;

    public CuttingProxy(Socket fromSender, Socket toReceiver, long cutAfter)
    {
        _fromSender = fromSender;
        _toReceiver = toReceiver;
        _cutAfter = cutAfter;
        Done = Task.Run(RunAsync);
    }

    public Task Done { get; }

    private async Task RunAsync()
    {
        using var stop = new CancellationTokenSource();
        var raw = CopyAsync(_toReceiver, _fromSender, stop.Token);
        long forwarded = 0;
        var header = new byte[ResumableFrame.HeaderSize];
        using var from = new NetworkStream(_fromSender, ownsSocket: false);
        while (forwarded < _cutAfter)
        {
            await from.ReadExactlyAsync(header);
            if (!ResumableFrame.TryParseHeader(header, out var type, out var length, out var error))
            {
                throw new InvalidOperationException(error);
            }

            var body = new byte[length];
            await from.ReadExactlyAsync(body);
            if (type == ResumableFrameType.Data)
            {
                var take = (int)Math.Min(length, _cutAfter - forwarded);
                var frame = new byte[ResumableFrame.HeaderSize + take];
                ResumableFrame.WriteHeader(frame, ResumableFrameType.Data, take);
                body.AsSpan(0, take).CopyTo(frame.AsSpan(ResumableFrame.HeaderSize));
                await _toReceiver.SendAsync(frame);
                forwarded += take;
            }
            else
            {
                await _toReceiver.SendAsync(header);
                await _toReceiver.SendAsync(body);
                forwarded += type == ResumableFrameType.Fin ? 1 : 0;
            }
        }

        await stop.CancelAsync();
        _toReceiver.Shutdown(SocketShutdown.Send);
        _fromSender.LingerState = new LingerOption(true, 0);
        _fromSender.Dispose();
        try
        {
            await raw;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static async Task CopyAsync(Socket from, Socket to, CancellationToken cancellationToken)
    {
        var buffer = new byte[65536];
        int n;
        while ((n = await from.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
        {
            await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, cancellationToken);
        }
    }

    public void Dispose()
    {
        _fromSender.Dispose();
        _toReceiver.Dispose();
    }
}

internal static class Bytes
{
    public static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + seed);
        }

        return bytes;
    }

    public static long Read64(ReadOnlySpan<byte> span) => BinaryPrimitives.ReadInt64BigEndian(span);
}

