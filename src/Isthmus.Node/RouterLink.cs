using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Naming;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node;

/// <summary>
/// The node's control channel to its router: enrols (proving the enrol secret and its key), keeps the
/// lease alive, and when the router goes away re-enrols with backoff, getting the same VIP back. Between
/// losing the channel and re-enrolling the session key is not trusted (a restarted router knows none):
/// <see cref="EnrolledAsync"/> lets new connects wait for the next enrolment instead of failing with EACCES.
/// </summary>
internal sealed class RouterLink(
    IPEndPoint router,
    string routerName,
    X509Certificate2 ca,
    byte[] enrolSecret,
    ECDsa key,
    string name,
    uint? requestedVip,
    ILogger logger)
{
    /// <summary>
    /// Re-enrol retries: first after 100 ms, doubling to 1 s, each ±20 % so a site's nodes do not retry in step.
    /// A refused connect to a router that is restarting is cheap, and connects wait for the enrolment, so a
    /// short cap is what makes connects work again within a second of the router listening.
    /// </summary>
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan GrantTimeout = TimeSpan.FromSeconds(2);
    private readonly Lock _lock = new();
    private TaskCompletionSource<NodeSessionState> _enrolled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, TaskCompletionSource<ControlMessage>> _grants = new();
    private long _nextGrantId;
    private ControlChannel? _channel;
    private NodeDirectory _directory = NodeDirectory.Empty("");

    /// <summary>
    /// The router refused to enrol this node because it is revoked. That is final ('isthmus node revoke' cannot
    /// be undone for a name or key), so the agent stops re-enrolling and connects fail at once with EACCES.
    /// </summary>
    public bool Revoked { get; private set; }

    /// <summary>The last enrolment (its VIP never changes; its key checks the router's legs to this node).</summary>
    public NodeSessionState? Current { get; private set; }

    /// <summary>The enrolment if the control channel is up now, else null (between a lost router and re-enrolment).</summary>
    public NodeSessionState? Enrolled
    {
        get
        {
            lock (_lock)
            {
                return _enrolled.Task.IsCompletedSuccessfully ? _enrolled.Task.Result : null;
            }
        }
    }

    /// <summary>The live enrolment, waiting up to <paramref name="wait"/> for the next one if the router was lost; null if none came.</summary>
    public async Task<NodeSessionState?> EnrolledAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        Task<NodeSessionState> next;
        lock (_lock)
        {
            next = _enrolled.Task;
        }

        try
        {
            return await next.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    /// <summary>The cluster's node names as the router last pushed them.</summary>
    public NodeDirectory Directory => Volatile.Read(ref _directory);

    /// <summary>The cluster name and the sites in file order, to build directories from the router's pushes.</summary>
    public required (string Cluster, IReadOnlyList<string> Sites) Naming { get; init; }

    /// <summary>Called with the local address the router sees us at, before enrolment, to bind the data listener.</summary>
    public required Func<IPAddress, ushort> DataPortFor { get; init; }

    /// <summary>Called after <see cref="DataPortFor"/>: the port of the direct-stream listener on the same address, or null for none.</summary>
    public Func<ushort?> DirectPortFor { get; init; } = () => null;

    /// <summary>Whether the router said at enrolment that it grants direct streams.</summary>
    public bool RouterGrantsDirect { get; private set; }

    /// <summary>
    /// Asks the router for a direct-stream grant to <paramref name="destination"/>. Null if the router gave none
    /// (another site, a forbidden destination, no direct listener there, no answer within 2 s, no channel): the
    /// caller then takes the router path, which reports the right errno for every refusal.
    /// </summary>
    public async Task<ControlMessage?> RequestDirectAsync(VirtualEndpoint destination, CancellationToken cancellationToken)
    {
        var channel = _channel;
        if (channel is null || !RouterGrantsDirect)
        {
            return null;
        }

        var id = (ulong)Interlocked.Increment(ref _nextGrantId);
        var answer = new TaskCompletionSource<ControlMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        _grants[id] = answer;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(GrantTimeout);
            await channel.SendAsync(new ControlMessage { Type = ControlMessage.Direct, Id = id, Vip = IPv4.Format(destination.Address), Port = destination.Port }, deadline.Token).ConfigureAwait(false);
            var grant = await answer.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
            return grant.Code == "ok" ? grant : null;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            return null;
        }
        finally
        {
            _grants.TryRemove(id, out _);
        }
    }

    /// <summary>First enrolment; a refusal here is the user's problem and ends the agent with its reason.</summary>
    public async Task<NodeSessionState> EnrolAsync(CancellationToken cancellationToken)
    {
        (NodeSessionState, ControlChannel) enrolled;
        try
        {
            enrolled = await ConnectAndEnrolAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (System.Security.Authentication.AuthenticationException e)
        {
            throw new UserException($"TLS with router {router} failed: {e.InnerException?.Message ?? e.Message} (its certificate is not from this cluster's CA: is the cluster directory the router's?)", e, 1);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException or ProtocolException)
        {
            throw new UserException($"cannot enrol with router {router}: {e.Message} (is 'isthmus router' running for this site, and is its --lan address right?)", e, 1);
        }

        var (state, channel) = enrolled;
        Current = state;
        _channel = channel;
        MarkEnrolled(state);
        return state;
    }

    /// <summary>Keeps the lease; reconnects and re-enrols when the channel breaks. Returns when cancelled.</summary>
    public async Task MaintainAsync(CancellationToken cancellationToken)
    {
        var backoff = FirstBackoff;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (_channel is null)
            {
                try
                {
                    var (state, channel) = await ConnectAndEnrolAsync(cancellationToken).ConfigureAwait(false);
                    Current = state;
                    _channel = channel;
                    MarkEnrolled(state);
                    backoff = FirstBackoff;
                    logger.LogInformation("Re-enrolled with router {Router}: VIP {Vip}", router, IPv4.Format(state.Vip));
                }
                catch (UserException e) when (Revoked)
                {
                    logger.LogError("Router {Router} refused to enrol this node again: {Reason}; no more retries, connects fail with EACCES", router, e.Message);
                    await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                catch (Exception e) when (e is SocketException or IOException or ProtocolException or UserException or System.Security.Authentication.AuthenticationException or TimeoutException)
                {
                    var delay = backoff * (0.8 + (0.4 * Random.Shared.NextDouble()));
                    logger.LogWarning("Router {Router} not reachable ({Reason}); retrying in {Delay} ms", router, e.Message, (int)delay.TotalMilliseconds);
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                    continue;
                }
            }

            try
            {
                await KeepAliveAsync(_channel, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or ProtocolException or TimeoutException)
            {
                logger.LogWarning("Lost router {Router}: {Reason}", router, e.Message);
            }

            MarkLost();
            await _channel.DisposeAsync().ConfigureAwait(false);
            _channel = null;
        }
    }

    private void MarkEnrolled(NodeSessionState state)
    {
        lock (_lock)
        {
            if (_enrolled.Task.IsCompleted)
            {
                _enrolled = new TaskCompletionSource<NodeSessionState>(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            _enrolled.SetResult(state);
        }
    }

    /// <summary>The channel broke: until re-enrolment, connects wait (the router may not know our key any more).</summary>
    private void MarkLost()
    {
        lock (_lock)
        {
            if (_enrolled.Task.IsCompleted)
            {
                _enrolled = new TaskCompletionSource<NodeSessionState>(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public async Task LeaveAsync()
    {
        if (_channel is null)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _channel.SendAsync(new ControlMessage { Type = ControlMessage.Leave }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }

        await _channel.DisposeAsync().ConfigureAwait(false);
        _channel = null;
    }

    /// <summary>Pings every 5 s and reads everything the router sends (pongs, directory pushes); throws when the channel breaks or falls silent.</summary>
    private async Task KeepAliveAsync(ControlChannel channel, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reading = ReadLoopAsync(channel, linked.Token);
        var pinging = PingLoopAsync(channel, linked.Token);
        var first = await Task.WhenAny(reading, pinging).ConfigureAwait(false);
        await linked.CancelAsync().ConfigureAwait(false);
        await first.ConfigureAwait(false);
    }

    private static async Task PingLoopAsync(ControlChannel channel, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            await channel.SendAsync(new ControlMessage { Type = ControlMessage.Ping }, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ReadLoopAsync(ControlChannel channel, CancellationToken cancellationToken)
    {
        while (true)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(TimeSpan.FromSeconds(15));
            ControlMessage? message;
            try
            {
                message = await channel.ReceiveAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException("router did not answer the keepalive");
            }

            switch (message?.Type)
            {
                case null:
                    throw new IOException("router closed the control channel");
                case ControlMessage.Directory:
                    ApplyDirectory(message);
                    break;
                case ControlMessage.Pong:
                    break;
                case ControlMessage.DirectGrant when message.Id is { } id:
                    if (_grants.TryGetValue(id, out var waiting))
                    {
                        waiting.TrySetResult(message);
                    }

                    break;
                default:
                    logger.LogDebug("Ignored control message '{Type}' from the router", message.Type);
                    break;
            }
        }
    }

    private void ApplyDirectory(ControlMessage message)
    {
        try
        {
            var entries = DirectoryCodec.FromWire(message.Nodes ?? []);
            Volatile.Write(ref _directory, new NodeDirectory(Naming.Cluster, Naming.Sites, entries));
            logger.LogDebug("Directory from the router: {Count} nodes", entries.Count);
        }
        catch (ProtocolException e)
        {
            logger.LogWarning("Ignored a directory from the router: {Reason}", e.Message);
        }
    }

    private async Task<(NodeSessionState, ControlChannel)> ConnectAndEnrolAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(15));
        var socket = new Socket(router.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            try
            {
                await socket.ConnectAsync(router, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"no answer from router {router}");
            }

            var dataPort = DataPortFor(((IPEndPoint)socket.LocalEndPoint!).Address);
            var directPort = DirectPortFor();
            var tls = await TlsEndpoints.ClientAsync(socket, routerName, identity: null,
                PeerCertificateValidator.Callback(ca, routerName, logger), deadline.Token).ConfigureAwait(false);
            var channel = new ControlChannel(tls);
            var challenge = await channel.ReceiveAsync(deadline.Token).ConfigureAwait(false);
            if (challenge?.Type != ControlMessage.Challenge || challenge.Nonce is null)
            {
                throw new ProtocolException("router did not send a challenge");
            }

            var nonce = Convert.FromBase64String(challenge.Nonce);
            var spki = key.ExportSubjectPublicKeyInfo();
            await channel.SendAsync(new ControlMessage
            {
                Type = ControlMessage.Enrol,
                Name = name,
                PublicKey = Convert.ToBase64String(spki),
                DataEndpoint = dataPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Proof = Convert.ToBase64String(EnrolmentProof.ComputeSecretProof(enrolSecret, nonce, name, spki)),
                Signature = Convert.ToBase64String(EnrolmentProof.SignNonce(key, nonce)),
                Vip = requestedVip is { } v ? IPv4.Format(v) : null,
                DirectPort = directPort,
            }, deadline.Token).ConfigureAwait(false);
            var answer = await channel.ReceiveAsync(deadline.Token).ConfigureAwait(false);
            if (answer?.Type == ControlMessage.Error)
            {
                await channel.DisposeAsync().ConfigureAwait(false);
                Revoked |= answer.Code == "revoked";
                throw new UserException($"router refused enrolment of '{name}': {answer.Message} [{answer.Code}]", 1);
            }

            if (answer?.Type != ControlMessage.Enrolled || answer.Vip is null || answer.SessionId is null || answer.SessionKey is null
                || !IPv4.TryParse(answer.Vip, out var vip))
            {
                throw new ProtocolException("router sent no valid enrolment answer");
            }

            // The router may dial us under the new session as soon as it sent `enrolled` (a restarted router
            // has streams waiting for us): inbound legs are checked against this key from now on.
            var state = new NodeSessionState(vip, answer.SessionId.Value, Convert.FromBase64String(answer.SessionKey));
            Current = state;

            // The router pushes the directory right after enrolling us: wait for it, so that names resolve as
            // soon as the node reports itself up.
            while (await channel.ReceiveAsync(deadline.Token).ConfigureAwait(false) is { } next)
            {
                if (next.Type == ControlMessage.Directory)
                {
                    ApplyDirectory(next);
                    break;
                }
            }

            RouterGrantsDirect = answer.DirectGrants == true && directPort is not null;
            return (state, channel);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
