using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Addressing;
using Isthmus.Core.Naming;
using Isthmus.Core.Native;
using Isthmus.Node.Socks;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node.Dns;

/// <summary>
/// A DNS server on loopback for programs that resolve names themselves instead of through libc: static
/// programs under the seccomp supervisor (Go's resolver, busybox, static glibc) and resolvers such as
/// c-ares. The supervisor sends their queries to the name servers of resolv.conf here. The cluster's
/// names are answered from the agent's directory (authoritatively: an unknown NODE.SITE.CLUSTER is
/// NXDOMAIN at once, as the shim's getaddrinfo gives EAI_NONAME); every other query is forwarded to the
/// real name servers unchanged, so the rest of DNS behaves as without Isthmus.
/// </summary>
internal sealed class DnsResponder : IDisposable
{
    /// <summary>Forwarded queries in flight; more are answered SERVFAIL at once so a flood holds no sockets.</summary>
    public const int MaxForwards = 128;

    private static readonly TimeSpan ForwardTimeout = TimeSpan.FromSeconds(2);
    private readonly Socket _socket;
    private readonly Func<NodeDirectory> _directory;
    private readonly string _askerSite;
    private readonly VirtualNetwork _network;
    private readonly IReadOnlyList<IPEndPoint> _upstream;
    private readonly ILogger _logger;
    private readonly uint _uid = Libc.GetUid();
    private int _forwards;
    private int _ownerWarned;

    /// <param name="upstream">The real name servers, tried in turn for names that are not the cluster's.</param>
    public DnsResponder(Func<NodeDirectory> directory, string askerSite, VirtualNetwork network, IReadOnlyList<IPEndPoint> upstream, ILogger logger)
    {
        _directory = directory;
        _askerSite = askerSite;
        _network = network;
        _upstream = upstream;
        _logger = logger;
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var answer = new byte[4096];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue; // an ICMP error from an earlier answer, or an oversized datagram: nothing to answer
            }

            var client = (IPEndPoint)received.RemoteEndPoint;
            if (!FromThisUser(client))
            {
                continue;
            }

            var request = buffer.AsMemory(0, received.ReceivedBytes);
            var length = Answer(request.Span, answer, out var forward);
            if (forward)
            {
                Forward(request.ToArray(), client, cancellationToken);
            }
            else if (length > 0)
            {
                await SendAsync(answer.AsMemory(0, length), client, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Every local user can reach 127.0.0.1, but the cluster's names are for this node's programs only (as
    /// the agent's control socket and SOCKS5 server are): the sending socket must belong to the agent's uid.
    /// </summary>
    private bool FromThisUser(IPEndPoint client)
    {
        var owners = SocketOwners.UdpOwners(client);
        if (owners.Count > 0 && owners.All(uid => uid == _uid))
        {
            return true;
        }

        var level = Interlocked.Exchange(ref _ownerWarned, 1) == 0 ? LogLevel.Warning : LogLevel.Debug;
        _logger.Log(level, "DNS: dropped a query from {Client}: its socket is owned by uid {Uids}, not {Allowed}",
            client, owners.Count == 0 ? "(not found)" : string.Join(",", owners), _uid);
        return false;
    }

    /// <summary>
    /// The answer to one datagram: its length in <paramref name="answer"/>, 0 to drop it, or
    /// <paramref name="forward"/> when the real name servers should answer.
    /// </summary>
    internal int Answer(ReadOnlySpan<byte> request, Span<byte> answer, out bool forward)
    {
        forward = false;
        if (!DnsQuery.TryReadHeader(request, out var id, out var flags) || (flags & DnsQuery.FlagResponse) != 0)
        {
            return 0; // no header, or a response: answering could start a loop
        }

        if (!DnsQuery.TryParse(request, out var query))
        {
            _logger.LogDebug("DNS: malformed query {Id} ({Length} bytes): FORMERR", id, request.Length);
            return DnsResponse.WriteHeaderOnly(answer, id, flags, DnsRcode.FormatError);
        }

        if (!query.IsStandardQuery)
        {
            return DnsResponse.WriteHeaderOnly(answer, id, flags, DnsRcode.NotImplemented);
        }

        var directory = _directory();
        var name = query.Name;
        if (query.Class == DnsQuery.ClassIn && DnsQuery.TryParseReverseName(name, out var reverse) && _network.IsVirtual(reverse))
        {
            var held = directory.TryReverse(reverse, out var holder);
            return query.Type is DnsQuery.TypePtr or DnsQuery.TypeAny && held
                ? DnsResponse.Write(answer, request, query, DnsRcode.NoError, authoritative: true, nameAnswer: holder.CanonicalName(directory.Cluster))
                : DnsResponse.Write(answer, request, query, held ? DnsRcode.NoError : DnsRcode.NameError, authoritative: true);
        }

        if (query.Class == DnsQuery.ClassIn && directory.TryResolve(name, _askerSite, out var entry))
        {
            // An A question gets the VIP; AAAA and the rest: the name exists but has no such record (NODATA).
            return query.Type is DnsQuery.TypeA or DnsQuery.TypeAny
                ? DnsResponse.Write(answer, request, query, DnsRcode.NoError, authoritative: true, addressAnswer: entry.Vip)
                : DnsResponse.Write(answer, request, query, DnsRcode.NoError, authoritative: true);
        }

        var bare = name.TrimEnd('.');
        if (bare.Equals(directory.Cluster, StringComparison.OrdinalIgnoreCase) || bare.EndsWith("." + directory.Cluster, StringComparison.OrdinalIgnoreCase))
        {
            return DnsResponse.Write(answer, request, query, DnsRcode.NameError, authoritative: true);
        }

        forward = true;
        return 0;
    }

    /// <summary>Relays one query to the real name servers in turn and their answer back, in the background.</summary>
    private void Forward(byte[] request, IPEndPoint client, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _forwards) > MaxForwards)
        {
            Interlocked.Decrement(ref _forwards);
            _ = SendFailureAsync(request, client, cancellationToken);
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                var reply = await ForwardAsync(request, cancellationToken).ConfigureAwait(false);
                if (reply is not null)
                {
                    await SendAsync(reply, client, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await SendFailureAsync(request, client, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _forwards);
            }
        }, CancellationToken.None);
    }

    private async Task<byte[]?> ForwardAsync(byte[] request, CancellationToken cancellationToken)
    {
        var buffer = new byte[65535];
        foreach (var server in _upstream)
        {
            // A socket per query: its own random port, and a connected socket accepts answers from that server only.
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ForwardTimeout);
            try
            {
                await socket.ConnectAsync(server, timeout.Token).ConfigureAwait(false);
                await socket.SendAsync(request, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                while (true)
                {
                    var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (n >= DnsQuery.HeaderLength && buffer[0] == request[0] && buffer[1] == request[1])
                    {
                        return buffer[..n];
                    }
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                _logger.LogDebug("DNS: name server {Server} did not answer: {Reason}", server, e.Message);
            }
        }

        return null;
    }

    private async Task SendFailureAsync(byte[] request, IPEndPoint client, CancellationToken cancellationToken)
    {
        var answer = new byte[DnsResponse.MaxLength(request.Length)];
        var length = DnsQuery.TryParse(request, out var query)
            ? DnsResponse.Write(answer, request, query, DnsRcode.ServerFailure, authoritative: false)
            : 0;
        if (length > 0)
        {
            await SendAsync(answer.AsMemory(0, length), client, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SendAsync(ReadOnlyMemory<byte> datagram, IPEndPoint client, CancellationToken cancellationToken)
    {
        try
        {
            await _socket.SendToAsync(datagram, SocketFlags.None, client, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            _logger.LogDebug("DNS: answer to {Client} not sent: {Reason}", client, e.Message);
        }
    }

    public void Dispose() => _socket.Dispose();
}
