using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Security;

/// <summary>
/// Checks a TLS peer's certificate against the cluster CA alone. The system's trusted roots play no part: a
/// certificate from any public CA, however valid, is not a router of this cluster.
/// </summary>
public static class PeerCertificateValidator
{
    /// <summary>
    /// Validates <paramref name="presented"/>: it must chain to <paramref name="ca"/> (and only to it), be within its
    /// validity period, not be a CA itself, and (when <paramref name="expectedDnsName"/> is given) carry that
    /// DNS name in its subject alternative names. Revocation is not checked (the cluster has no CRL).
    /// </summary>
    /// <param name="presented">The peer's certificate; null when it sent none.</param>
    /// <param name="ca">The cluster CA certificate.</param>
    /// <param name="expectedDnsName">The peer's expected name (<c>router.SITE.CLUSTER</c>), or null to accept any name.</param>
    /// <param name="reason">Why the certificate was refused; empty when it is accepted.</param>
    /// <returns>Whether the certificate is accepted.</returns>
    public static bool Validate(X509Certificate2? presented, X509Certificate2 ca, string? expectedDnsName, out string reason)
    {
        ArgumentNullException.ThrowIfNull(ca);
        if (presented is null)
        {
            reason = "the peer presented no certificate";
            return false;
        }

        var now = DateTime.Now;
        if (now < presented.NotBefore)
        {
            reason = $"certificate '{presented.Subject}' is not valid before {Format(presented.NotBefore)}";
            return false;
        }

        if (now > presented.NotAfter)
        {
            reason = $"certificate '{presented.Subject}' expired on {Format(presented.NotAfter)}";
            return false;
        }

        // The CA certificate is public (every node has ca.crt); presenting it must not pass as a router.
        var constraints = presented.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
        if (constraints is { CertificateAuthority: true })
        {
            reason = $"certificate '{presented.Subject}' is a CA certificate, not a router's";
            return false;
        }

        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            chain.ChainPolicy.VerificationTime = now;
            try
            {
                if (!chain.Build(presented))
                {
                    var status = string.Join("; ", chain.ChainStatus
                        .Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
                    reason = $"certificate '{presented.Subject}' is not signed by this cluster's CA ({status})";
                    return false;
                }

                // CustomRootTrust ends every valid chain at a certificate of the custom store; check that it is
                // this CA by its public key, not only by name.
                var root = chain.ChainElements[^1].Certificate;
                if (!root.RawDataMemory.Span.SequenceEqual(ca.RawDataMemory.Span))
                {
                    reason = $"certificate '{presented.Subject}' chains to '{root.Subject}', not to this cluster's CA";
                    return false;
                }
            }
            finally
            {
                foreach (var element in chain.ChainElements)
                {
                    element.Certificate.Dispose();
                }
            }
        }

        if (expectedDnsName is not null)
        {
            var names = presented.Extensions.OfType<X509SubjectAlternativeNameExtension>()
                .SelectMany(e => e.EnumerateDnsNames()).ToList();
            if (!names.Contains(expectedDnsName, StringComparer.OrdinalIgnoreCase))
            {
                reason = names.Count == 0
                    ? $"certificate '{presented.Subject}' has no DNS name; expected {expectedDnsName}"
                    : $"certificate is for {string.Join(", ", names)}, expected {expectedDnsName}";
                return false;
            }
        }

        reason = "";
        return true;
    }

    /// <summary>
    /// A callback for <see cref="SslStream"/> that decides by <see cref="Validate"/> alone. The errors the
    /// platform reports are ignored on purpose: they come from the system store, which does not know the
    /// cluster CA and would refuse every router certificate.
    /// </summary>
    /// <param name="ca">The cluster CA certificate.</param>
    /// <param name="expectedDnsName">The peer's expected name, or null to accept any certificate of this CA.</param>
    /// <param name="logger">Where a refusal is logged (with the reason), or null.</param>
    public static RemoteCertificateValidationCallback Callback(X509Certificate2 ca, string? expectedDnsName, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(ca);
        return (_, certificate, _, _) =>
        {
            var presented = certificate as X509Certificate2;
            var copy = presented is null && certificate is not null
                ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData())
                : null;
            try
            {
                if (Validate(presented ?? copy, ca, expectedDnsName, out var reason))
                {
                    return true;
                }

                logger?.LogWarning("TLS peer refused: {Reason}", reason);
                return false;
            }
            finally
            {
                copy?.Dispose();
            }
        };
    }

    private static string Format(DateTime time) =>
        time.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
}
