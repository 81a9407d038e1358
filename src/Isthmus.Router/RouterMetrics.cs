namespace Isthmus.Router;

/// <summary>Counters a person or Prometheus reads to see what the router does.</summary>
public sealed class RouterMetrics
{
    private long _streamsOpened;
    private long _streamsFailed;
    private long _bytesRelayed;
    private long _legsRefused;
    private long _datagramsForwarded;
    private long _datagramsDropped;
    private long _handshakesFailed;
    private readonly List<Core.Relay.HandshakeGuard> _guards = [];
    private long _domainStreamsRefused;
    private long _domainDatagramsRefused;
    private long _streamsEndedByDomains;
    private long _directGrants;
    private long _directRefused;
    private long _trunksDialled;

    /// <summary>WAN trunks this router dialled that are up now (set by the router).</summary>
    public Func<int> TrunksUp { get; set; } = () => 0;

    /// <summary>WAN trunks this router dialled since it started (each one a TCP + TLS handshake).</summary>
    public long TrunksDialled => Interlocked.Read(ref _trunksDialled);

    public void TrunkDialled() => Interlocked.Increment(ref _trunksDialled);

    /// <summary>Direct-stream grants given to nodes of this site (each one a stream the router does not relay).</summary>
    public long DirectGrants => Interlocked.Read(ref _directGrants);

    /// <summary>Direct-stream requests answered without a grant (the node then takes the router path).</summary>
    public long DirectRefused => Interlocked.Read(ref _directRefused);

    public void DirectGranted() => Interlocked.Increment(ref _directGrants);

    public void DirectNotGranted() => Interlocked.Increment(ref _directRefused);

    public long StreamsOpened => Interlocked.Read(ref _streamsOpened);

    public long StreamsFailed => Interlocked.Read(ref _streamsFailed);

    public long BytesRelayed => Interlocked.Read(ref _bytesRelayed);

    public long LegsRefused => Interlocked.Read(ref _legsRefused);

    public void StreamOpened() => Interlocked.Increment(ref _streamsOpened);

    public void StreamFailed() => Interlocked.Increment(ref _streamsFailed);

    public void LegRefused() => Interlocked.Increment(ref _legsRefused);

    public void Relayed(long bytes) => Interlocked.Add(ref _bytesRelayed, bytes);

    public long DatagramsForwarded => Interlocked.Read(ref _datagramsForwarded);

    public long DatagramsDropped => Interlocked.Read(ref _datagramsDropped);

    public void DatagramForwarded() => Interlocked.Increment(ref _datagramsForwarded);

    public void DatagramDropped() => Interlocked.Increment(ref _datagramsDropped);

    public long HandshakesFailed => Interlocked.Read(ref _handshakesFailed);

    /// <summary>A connection that spoke neither protocol, failed its TLS handshake or broke the control protocol.</summary>
    public void HandshakeFailed() => Interlocked.Increment(ref _handshakesFailed);

    /// <summary>Adds a listener's handshake guard to the handshake gauges and counters.</summary>
    public void Track(Core.Relay.HandshakeGuard guard)
    {
        lock (_guards)
        {
            _guards.Add(guard);
        }
    }

    private (long Pending, long TimedOut, long Evicted) Handshakes()
    {
        lock (_guards)
        {
            return (_guards.Sum(g => (long)g.Pending), _guards.Sum(g => g.TimedOut), _guards.Sum(g => g.Evicted));
        }
    }

    public long HandshakesTimedOut => Handshakes().TimedOut;

    public long HandshakesEvicted => Handshakes().Evicted;

    public long DomainStreamsRefused => Interlocked.Read(ref _domainStreamsRefused);

    public long DomainDatagramsRefused => Interlocked.Read(ref _domainDatagramsRefused);

    public long StreamsEndedByDomains => Interlocked.Read(ref _streamsEndedByDomains);

    /// <summary>A stream or datagram between nodes that share no domain (or with a revoked node) was refused.</summary>
    public void DomainRefused(bool datagram)
    {
        if (datagram)
        {
            Interlocked.Increment(ref _domainDatagramsRefused);
        }
        else
        {
            Interlocked.Increment(ref _domainStreamsRefused);
        }
    }

    public void StreamEndedByDomains() => Interlocked.Increment(ref _streamsEndedByDomains);

    /// <summary>The Prometheus exposition of these counters and the live node count.</summary>
    public string Render(string site, int liveNodes)
    {
        var handshakes = Handshakes();
        return new Core.Metrics.PrometheusText()
        .Counter("isthmus_router_streams_opened_total", "Streams relayed (both legs open).", StreamsOpened, $"site=\"{site}\"")
        .Counter("isthmus_router_streams_failed_total", "Streams whose next hop could not be opened.", StreamsFailed, $"site=\"{site}\"")
        .Counter("isthmus_router_legs_refused_total", "Legs refused: bad header, failed authentication, replay.", LegsRefused, $"site=\"{site}\"")
        .Counter("isthmus_router_relayed_bytes_total", "Bytes relayed, both directions, counted when a stream ends.", BytesRelayed, $"site=\"{site}\"")
        .Counter("isthmus_router_datagrams_forwarded_total", "Datagrams handed to the next hop's queue.", DatagramsForwarded, $"site=\"{site}\"")
        .Counter("isthmus_router_datagrams_dropped_total", "Datagrams dropped: no route, node or link down, full queue, spoofed source.", DatagramsDropped, $"site=\"{site}\"")
        .Counter("isthmus_router_handshakes_failed_total", "Connections closed in their handshake: neither protocol, TLS failure, control protocol error.", HandshakesFailed, $"site=\"{site}\"")
        .Counter("isthmus_router_handshakes_timed_out_total", "Connections shut down for not completing their handshake within the deadline.", handshakes.TimedOut, $"site=\"{site}\"")
        .Counter("isthmus_router_handshakes_evicted_total", "Connections in their handshake shut down to make room (too many pending on a listener).", handshakes.Evicted, $"site=\"{site}\"")
        .Gauge("isthmus_router_handshakes_pending", "Connections in their handshake now, all listeners.", handshakes.Pending, $"site=\"{site}\"")
        .Counter("isthmus_router_domain_streams_refused_total", "Streams refused because the nodes share no domain (or one is revoked).", DomainStreamsRefused, $"site=\"{site}\"")
        .Counter("isthmus_router_domain_datagrams_refused_total", "Datagrams dropped because the nodes share no domain (or one is revoked).", DomainDatagramsRefused, $"site=\"{site}\"")
        .Counter("isthmus_router_streams_ended_total", "Established streams reset because a domain change or a revocation forbids them.", StreamsEndedByDomains, $"site=\"{site}\"")
        .Counter("isthmus_router_direct_grants_total", "Direct LAN streams granted (node to node, not relayed here).", DirectGrants, $"site=\"{site}\"")
        .Counter("isthmus_router_direct_refused_total", "Direct-stream requests answered without a grant (router path instead).", DirectRefused, $"site=\"{site}\"")
        .Gauge("isthmus_router_nodes_live", "Nodes enrolled now.", liveNodes, $"site=\"{site}\"")
        .Gauge("isthmus_router_wan_trunks_up", "WAN trunks this router dialled that are up now.", TrunksUp(), $"site=\"{site}\"")
        .Counter("isthmus_router_wan_trunks_dialled_total", "WAN trunks this router dialled (each a TCP and TLS handshake; streams on them need none).", TrunksDialled, $"site=\"{site}\"")
        .ToString();
    }
}
