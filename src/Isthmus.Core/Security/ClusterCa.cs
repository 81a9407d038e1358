using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Isthmus.Core.Security;

/// <summary>
/// The cluster's certificate authority: creates the CA, issues router certificates, and reads and writes them
/// as PEM. All keys are ECDSA P-256 (small, fast, and what every TLS 1.3 stack supports).
/// </summary>
public static class ClusterCa
{
    /// <summary>How long the CA is valid.</summary>
    public static readonly TimeSpan AuthorityLifetime = TimeSpan.FromDays(3652);

    /// <summary>How long a router certificate is valid (never beyond the CA).</summary>
    public static readonly TimeSpan RouterLifetime = TimeSpan.FromDays(1826);

    // Certificates start a little in the past so that a peer whose clock is slightly behind accepts them.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromHours(1);

    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1", "Server Authentication");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    /// <summary>
    /// Creates a CA for the cluster: ECDSA P-256, self-signed, valid 10 years, basic constraints CA (path length
    /// 0: it signs only end-entity certificates), key usage certificate signing.
    /// </summary>
    /// <returns>The CA certificate with its private key.</returns>
    public static X509Certificate2 CreateAuthority(string clusterName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(
            new X500DistinguishedName($"CN=Isthmus CA {clusterName}, O=Isthmus"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now - ClockSkew, now + AuthorityLifetime);
    }

    /// <summary>The DNS name of a site's router: <c>router.SITE.CLUSTER</c>.</summary>
    public static string RouterDnsName(string site, string clusterName) => $"router.{site}.{clusterName}";

    /// <summary>
    /// Issues the router certificate of <paramref name="site"/>: ECDSA P-256, CN and DNS SAN
    /// <c>router.SITE.CLUSTER</c>, extended key usage server and client authentication (a router is the TLS
    /// server for its nodes and peers and the client towards peers), valid 5 years.
    /// </summary>
    /// <returns>The certificate with its private key.</returns>
    public static X509Certificate2 IssueRouterCertificate(X509Certificate2 ca, string site, string clusterName)
    {
        ArgumentNullException.ThrowIfNull(ca);
        var now = DateTimeOffset.UtcNow;
        return IssueCertificate(ca, RouterDnsName(site, clusterName), now - ClockSkew, now + RouterLifetime);
    }

    /// <summary>
    /// Issues an end-entity certificate for <paramref name="dnsName"/> (CN and DNS SAN) signed by
    /// <paramref name="ca"/>, with server and client authentication. The validity is clamped to the CA's.
    /// </summary>
    public static X509Certificate2 IssueCertificate(X509Certificate2 ca, string dnsName, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        ArgumentNullException.ThrowIfNull(ca);
        if (!ca.HasPrivateKey)
        {
            throw new ArgumentException("the CA certificate has no private key", nameof(ca));
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={dnsName}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuth, ClientAuth], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(dnsName);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));

        // CertificateRequest.Create refuses a validity outside the issuer's.
        var caNotBefore = new DateTimeOffset(ca.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        var caNotAfter = new DateTimeOffset(ca.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (notBefore < caNotBefore)
        {
            notBefore = caNotBefore;
        }

        if (notAfter > caNotAfter)
        {
            notAfter = caNotAfter;
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // a positive serial number, as RFC 5280 requires
        using var certificate = request.Create(ca, notBefore, notAfter, serial);
        return certificate.CopyWithPrivateKey(key);
    }

    /// <summary>The certificate as PEM (<c>-----BEGIN CERTIFICATE-----</c>).</summary>
    public static string ExportCertificatePem(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.ExportCertificatePem() + "\n";
    }

    /// <summary>The certificate's ECDSA private key as unencrypted PKCS#8 PEM (<c>-----BEGIN PRIVATE KEY-----</c>).</summary>
    public static string ExportPrivateKeyPem(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var key = certificate.GetECDsaPrivateKey()
            ?? throw new ArgumentException("the certificate has no ECDSA private key", nameof(certificate));
        return key.ExportPkcs8PrivateKeyPem() + "\n";
    }

    /// <summary>Writes the certificate as PEM, mode 0644, atomically.</summary>
    public static void WriteCertificate(string path, X509Certificate2 certificate) =>
        SecureFile.WriteAtomic(path, ExportCertificatePem(certificate), secret: false);

    /// <summary>Writes the certificate's private key as PEM, mode 0600, atomically.</summary>
    public static void WritePrivateKey(string path, X509Certificate2 certificate) =>
        SecureFile.WriteAtomic(path, ExportPrivateKeyPem(certificate), secret: true);

    /// <summary>Reads a PEM certificate (no private key).</summary>
    /// <exception cref="UserException">The file is missing or not a PEM certificate.</exception>
    public static X509Certificate2 ReadCertificate(string path)
    {
        var pem = ReadText(path);
        try
        {
            return X509Certificate2.CreateFromPem(pem);
        }
        catch (CryptographicException e)
        {
            throw new UserException($"{path} is not a PEM certificate: {e.Message}", e);
        }
    }

    /// <summary>Reads a PEM certificate and its PEM private key.</summary>
    /// <exception cref="UserException">A file is missing, malformed, or the key does not belong to the certificate.</exception>
    public static X509Certificate2 ReadCertificateWithKey(string certificatePath, string keyPath)
    {
        var certificatePem = ReadText(certificatePath);
        var keyPem = ReadText(keyPath);
        try
        {
            return X509Certificate2.CreateFromPem(certificatePem, keyPem);
        }
        catch (CryptographicException e)
        {
            throw new UserException(
                $"{certificatePath} with {keyPath}: not a PEM certificate and its private key ({e.Message})", e);
        }
    }

    private static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UserException($"{path} not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserException($"cannot read {path}: {e.Message}", e);
        }
    }
}
