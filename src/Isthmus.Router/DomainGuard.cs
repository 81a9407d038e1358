using System.Collections.Concurrent;
using Isthmus.Core.Addressing;
using Isthmus.Core.Domains;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// Where routers enforce communication domains. A stream or datagram between two nodes that share no domain is
/// refused by the source's router and again by the destination's (for inter-site traffic), with
/// <see cref="LegStatus.HostUnreachable"/> (the program sees EHOSTUNREACH: a node outside its domains looks like
/// a VIP no node holds, which is also what name resolution shows it). Nodes are identified by VIP through the
/// router's directory; VIPs are authenticated (a node's legs and datagrams must carry its own VIP, a peer's its
/// site's subnet). When the table changes, streams it forbids are reset (unless the change drains) and revoked
/// nodes of this site lose their session.
/// </summary>
internal sealed class DomainGuard
{
    private static readonly TimeSpan DatagramLogInterval = TimeSpan.FromSeconds(5);
    private readonly RouterContext _context;
    private readonly DomainState _domains;
    private readonly RouterDirectory _directory;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<(uint, uint), long> _datagramLogged = new();

    public DomainGuard(RouterContext context, DomainState domains, RouterDirectory directory, LiveStreams streams, ILogger logger)
    {
        _context = context;
        _domains = domains;
        _directory = directory;
        _logger = logger;
        Streams = streams;
        domains.Augment = AddRevokedKeys;
        domains.Changed += OnChanged;
    }

    public LiveStreams Streams { get; }

    /// <summary>The node holding <paramref name="vip"/> as this router's directory knows it.</summary>
    public NodeRef Identify(uint vip) =>
        _directory.Snapshot.TryReverse(vip, out var entry) ? new NodeRef(entry.Name, entry.Site) : NodeRef.Unknown;

    public bool Allows(uint source, uint destination) => _domains.Current.Shares(Identify(source), Identify(destination));

    /// <summary>Null if the stream may open; else the reason (counted and logged here).</summary>
    public string? CheckStream(LegHeader header)
    {
        var src = Identify(header.Source.Address);
        var dst = Identify(header.Destination.Address);
        var table = _domains.Current;
        if (table.Shares(src, dst))
        {
            return null;
        }

        var reason = Why(table, src, dst);
        _context.Metrics.DomainRefused(datagram: false);
        _logger.LogInformation("Refused stream {Stream} {Src} ({SrcNode}) -> {Dst} ({DstNode}): {Reason} (domain table version {Version})",
            header.StreamId, header.Source, src, header.Destination, dst, reason, table.Version);
        return reason;
    }

    /// <summary>
    /// Registers a stream that passed <see cref="CheckStream"/> and is about to be relayed. Checked again once
    /// registered: a change that came while the stream was being dialled has swept without it.
    /// </summary>
    public IDisposable Track(LegHeader header, Core.Relay.RelayEndpoint inbound, Core.Relay.RelayEndpoint outbound)
    {
        var registration = Streams.Register(header.StreamId, header.Source.Address, header.Destination.Address, inbound, outbound);
        if (!Allows(header.Source.Address, header.Destination.Address))
        {
            _logger.LogInformation("Ended stream {Stream} {Src} -> {Dst} as it opened: domain table version {Version} forbids it", header.StreamId, header.Source, header.Destination, _domains.Current.Version);
            inbound.Abort();
            outbound.Abort();
        }

        return registration;
    }

    /// <summary>Whether a datagram may pass; a refusal is counted, and logged at most every 5 s per pair (UDP may be flooded).</summary>
    public bool AllowDatagram(VirtualEndpoint source, VirtualEndpoint destination)
    {
        var src = Identify(source.Address);
        var dst = Identify(destination.Address);
        var table = _domains.Current;
        if (table.Shares(src, dst))
        {
            return true;
        }

        _context.Metrics.DomainRefused(datagram: true);
        var now = Environment.TickCount64;
        var key = (source.Address, destination.Address);
        if (!_datagramLogged.TryGetValue(key, out var last) || now - last > DatagramLogInterval.TotalMilliseconds)
        {
            if (_datagramLogged.Count > 4096)
            {
                _datagramLogged.Clear();
            }

            _datagramLogged[key] = now;
            _logger.LogInformation("Dropped datagrams {Src} ({SrcNode}) -> {Dst} ({DstNode}): {Reason} (domain table version {Version})",
                source, src, destination, dst, Why(table, src, dst), table.Version);
        }

        return false;
    }

    private static string Why(DomainTable table, NodeRef src, NodeRef dst) =>
        table.IsRevoked(src) ? $"{src} is revoked"
        : table.IsRevoked(dst) ? $"{dst} is revoked"
        : !src.IsKnown || !dst.IsKnown ? "a node this router has no name for (its binding has not arrived yet) is in no domain of '*'"
        : $"{src} and {dst} share no domain";

    // Raised under the domain state's lock: the work (cancelling sessions, resetting sockets, whose callbacks may
    // run inline) goes to the thread pool.
    private void OnChanged(DomainTable previous, DomainTable current) => _ = Task.Run(() => Enforce(previous, current));

    private void Enforce(DomainTable previous, DomainTable current)
    {
        foreach (var (name, _) in _context.Registry.Bindings())
        {
            var node = new NodeRef(name, _context.Site.Name);
            if (current.IsRevoked(node) && _context.Registry.EndByName(name, "revoked"))
            {
                _logger.LogWarning("Ended the session of node {Node}: revoked", name);
            }
        }

        // Only streams this change forbids: a stream left to drain by an earlier change stays left alone.
        var ended = Streams.EndWhere((s, d) =>
        {
            var src = Identify(s);
            var dst = Identify(d);
            var revoked = (current.IsRevoked(src) && !previous.IsRevoked(src)) || (current.IsRevoked(dst) && !previous.IsRevoked(dst));
            return revoked || (!current.Drain && previous.Shares(src, dst) && !current.Shares(src, dst));
        });
        foreach (var stream in ended)
        {
            _context.Metrics.StreamEndedByDomains();
            _logger.LogInformation("Ended stream {Stream} {Src} ({SrcNode}) -> {Dst} ({DstNode}): domain table version {Version} forbids it",
                stream.StreamId, IPv4.Format(stream.Source), Identify(stream.Source), IPv4.Format(stream.Destination), Identify(stream.Destination), current.Version);
        }
    }

    /// <summary>Only this router knows the keys of its bindings: a revoked one's key goes into the table, so every router refuses it.</summary>
    private DomainTable AddRevokedKeys(DomainTable table)
    {
        var keys = _context.Registry.KeysOf(name => table.IsRevoked(new NodeRef(name, _context.Site.Name)))
            .Where(k => !table.IsKeyRevoked(k))
            .ToList();
        return keys.Count == 0 ? table : table.WithRevokedKeys(keys);
    }
}
