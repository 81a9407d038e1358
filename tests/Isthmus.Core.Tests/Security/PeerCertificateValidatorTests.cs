using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Isthmus.Core.Security;
using Xunit;

namespace Isthmus.Core.Tests.Security;

public sealed class PeerCertificateValidatorTests : IDisposable
{
    private readonly X509Certificate2 _ca = ClusterCa.CreateAuthority("lab");
    private readonly X509Certificate2 _otherCa = ClusterCa.CreateAuthority("lab");

    public void Dispose()
    {
        _ca.Dispose();
        _otherCa.Dispose();
    }

    [Fact]
    public void Authority_is_a_p256_ca()
    {
        Assert.True(_ca.HasPrivateKey);
        Assert.Equal("CN=Isthmus CA lab, O=Isthmus", _ca.Subject);
        var constraints = _ca.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.True(constraints.CertificateAuthority);
        Assert.True(constraints.Critical);
        var usage = _ca.Extensions.OfType<X509KeyUsageExtension>().Single();
        Assert.True(usage.KeyUsages.HasFlag(X509KeyUsageFlags.KeyCertSign));
        using var key = _ca.GetECDsaPublicKey()!;
        Assert.Equal(256, key.KeySize);
        Assert.InRange((_ca.NotAfter - DateTime.Now).TotalDays, 3640, 3660);
    }

    [Fact]
    public void Router_certificate_has_name_usages_and_lifetime()
    {
        using var router = ClusterCa.IssueRouterCertificate(_ca, "west", "lab");
        Assert.True(router.HasPrivateKey);
        Assert.Equal("CN=router.west.lab", router.Subject);
        Assert.Equal(_ca.Subject, router.Issuer);
        Assert.Equal(["router.west.lab"], router.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
        var eku = router.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value);
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], eku);
        Assert.False(router.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        using var key = router.GetECDsaPublicKey()!;
        Assert.Equal(256, key.KeySize);
        Assert.InRange((router.NotAfter - DateTime.Now).TotalDays, 1820, 1830);
    }

    [Fact]
    public void Pem_round_trip_keeps_the_key()
    {
        using var router = ClusterCa.IssueRouterCertificate(_ca, "west", "lab");
        var certPem = ClusterCa.ExportCertificatePem(router);
        var keyPem = ClusterCa.ExportPrivateKeyPem(router);
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", certPem, StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", keyPem, StringComparison.Ordinal);
        using var loaded = X509Certificate2.CreateFromPem(certPem, keyPem);
        Assert.Equal(router.Thumbprint, loaded.Thumbprint);
        using var signer = loaded.GetECDsaPrivateKey()!;
        using var verifier = router.GetECDsaPublicKey()!;
        byte[] data = [1, 2, 3];
        var signature = signer.SignData(data, HashAlgorithmName.SHA256);
        Assert.True(verifier.VerifyData(data, signature, HashAlgorithmName.SHA256));
    }

    [Fact]
    public void Accepts_a_router_of_this_ca_with_the_right_name()
    {
        using var router = ClusterCa.IssueRouterCertificate(_ca, "west", "lab");
        Assert.True(PeerCertificateValidator.Validate(router, _ca, "router.west.lab", out var reason), reason);
        Assert.Equal("", reason);
        Assert.True(PeerCertificateValidator.Validate(router, _ca, "ROUTER.West.lab", out _));
        Assert.True(PeerCertificateValidator.Validate(router, _ca, null, out _));
    }

    [Fact]
    public void Accepts_with_the_public_ca_only()
    {
        using var router = ClusterCa.IssueRouterCertificate(_ca, "west", "lab");
        using var publicCa = X509CertificateLoader.LoadCertificate(_ca.RawData);
        Assert.False(publicCa.HasPrivateKey);
        Assert.True(PeerCertificateValidator.Validate(router, publicCa, "router.west.lab", out var reason), reason);
    }

    [Fact]
    public void Refuses_the_wrong_name()
    {
        using var router = ClusterCa.IssueRouterCertificate(_ca, "west", "lab");
        Assert.False(PeerCertificateValidator.Validate(router, _ca, "router.east.lab", out var reason));
        Assert.Equal("certificate is for router.west.lab, expected router.east.lab", reason);
    }

    [Fact]
    public void Refuses_a_certificate_of_another_ca_with_the_same_names()
    {
        using var foreign = ClusterCa.IssueRouterCertificate(_otherCa, "west", "lab");
        Assert.False(PeerCertificateValidator.Validate(foreign, _ca, "router.west.lab", out var reason));
        Assert.Contains("is not signed by this cluster's CA", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_a_self_signed_certificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=router.west.lab", key, HashAlgorithmName.SHA256);
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        Assert.False(PeerCertificateValidator.Validate(selfSigned, _ca, null, out var reason));
        Assert.Contains("not signed by this cluster's CA", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_an_expired_certificate()
    {
        using var expired = ClusterCa.IssueCertificate(_ca, "router.west.lab", DateTimeOffset.UtcNow.AddMinutes(-50), DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.True(expired.NotAfter < DateTime.Now);
        Assert.False(PeerCertificateValidator.Validate(expired, _ca, "router.west.lab", out var reason));
        Assert.Contains("expired on", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_a_certificate_not_yet_valid()
    {
        using var future = ClusterCa.IssueCertificate(_ca, "router.west.lab", DateTimeOffset.UtcNow.AddDays(1), DateTimeOffset.UtcNow.AddDays(2));
        Assert.False(PeerCertificateValidator.Validate(future, _ca, "router.west.lab", out var reason));
        Assert.Contains("is not valid before", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_the_ca_itself_and_no_certificate()
    {
        using var publicCa = X509CertificateLoader.LoadCertificate(_ca.RawData);
        Assert.False(PeerCertificateValidator.Validate(publicCa, _ca, null, out var reason));
        Assert.Contains("is a CA certificate", reason, StringComparison.Ordinal);
        Assert.False(PeerCertificateValidator.Validate(null, _ca, null, out reason));
        Assert.Equal("the peer presented no certificate", reason);
    }

    [Fact]
    public void Callback_ignores_platform_errors_and_uses_the_cluster_ca()
    {
        using var router = ClusterCa.IssueRouterCertificate(_ca, "west", "lab");
        using var foreign = ClusterCa.IssueRouterCertificate(_otherCa, "west", "lab");
        var callback = PeerCertificateValidator.Callback(_ca, "router.west.lab");
        Assert.True(callback(this, router, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(callback(this, foreign, null, SslPolicyErrors.None));
        Assert.False(callback(this, null, null, SslPolicyErrors.RemoteCertificateNotAvailable));
    }
}
