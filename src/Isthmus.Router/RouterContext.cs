using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Isthmus.Core.Config;
using Isthmus.Core.Security;
using Isthmus.Core.Wire;

namespace Isthmus.Router;

/// <summary>Everything a router's handlers share: its configuration, identity, secrets and registry.</summary>
public sealed class RouterContext
{
    public required ClusterFile Cluster { get; init; }

    public required SiteSettings Site { get; init; }

    public required X509Certificate2 CaCertificate { get; init; }

    public required SslStreamCertificateContext Identity { get; init; }

    public required byte[] EnrolSecret { get; init; }

    public required byte[] RouterSecret { get; init; }

    public required NodeRegistry Registry { get; init; }

    /// <summary><c>DIR/state/SITE</c>: the registry's bindings and the domain table live here.</summary>
    public required string StateDirectory { get; init; }

    public ReplayGuard Replays { get; } = new();

    public RouterMetrics Metrics { get; } = new();

    /// <summary>
    /// How long a connection may take from accept to authenticated (first byte, TLS handshake, leg header or
    /// enrolment together): one deadline for the whole handshake. Legitimate peers take milliseconds; 10 s leaves
    /// room for a loaded host and a long WAN round trip.
    /// </summary>
    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Connections per listener allowed in their handshake at once; beyond it the oldest is shut down. 512 is
    /// far more than a site's nodes open at once (a leg's handshake is one round trip), and bounds the memory of
    /// a half-open flood to 512 sockets and TLS states (~16 MB) per listener.
    /// </summary>
    public int MaxPendingHandshakes { get; init; } = 512;

    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Timers and bounds of resumable WAN legs (router flags <c>--wan-*</c>).</summary>
    public Isthmus.Core.Relay.Resumable.ResumableOptions ResumeOptions { get; set; } = Isthmus.Core.Relay.Resumable.ResumableOptions.Default;

    /// <summary>
    /// WAN trunks dialled to each peer router for stream legs (<c>--wan-trunks</c>); 0: one TCP (+ TLS) connection
    /// per stream leg, as before trunks.
    /// </summary>
    public int TrunksPerSite { get; set; } = 1;

    /// <summary>Where streams spill while their WAN leg is down and memory is at its bound (<c>--wan-spool</c>); null: off.</summary>
    public Isthmus.Core.Relay.Resumable.Spool? WanSpool { get; set; }

    /// <summary>
    /// This router process's random instance id, sent as the key id of its WAN legs and peer links: a peer
    /// that sees a new one knows this router restarted and ends the streams the old instance opened.
    /// </summary>
    public ulong Epoch { get; } = NewEpoch();

    private static ulong NewEpoch()
    {
        Span<byte> bytes = stackalloc byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes) | 1; // never 0 (= "no epoch")
    }

    public string Name => TlsEndpoints.RouterName(Site.Name, Cluster.Cluster.Name);

    /// <summary>How a leg to <paramref name="site"/>'s router is secured: a TLS client handshake, or null for cleartext legs.</summary>
    public Func<System.Net.Sockets.Socket, CancellationToken, Task<Stream>>? WanSecurityFor(SiteSettings site, Microsoft.Extensions.Logging.ILogger logger)
    {
        var emulator = WanEmulator;
        if (!Cluster.Cluster.WanEncryption)
        {
            return emulator is null ? null : (socket, _) => Task.FromResult(emulator.Wrap(socket));
        }

        var peerName = TlsEndpoints.RouterName(site.Name, Cluster.Cluster.Name);
        var validator = ValidatorFor(peerName, logger);
        return async (socket, ct) => await TlsEndpoints.WanClientAsync(emulator?.Wrap(socket) ?? new System.Net.Sockets.NetworkStream(socket, ownsSocket: false),
            peerName, Identity, validator, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The WAN emulator (<c>--wan-emulation</c> or the cluster file's <c>wan_emulation</c>), or null: it wraps every
    /// WAN connection's socket below TLS, dialled (<see cref="WanSecurityFor"/>) and accepted on the WAN port.
    /// </summary>
    public Isthmus.Core.Relay.Emulation.WanEmulator? WanEmulator { get; set; }

    public RemoteCertificateValidationCallback ValidatorFor(string? expectedName, Microsoft.Extensions.Logging.ILogger logger) =>
        PeerCertificateValidator.Callback(CaCertificate, expectedName, logger);
}
