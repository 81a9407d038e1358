using System.Security.Cryptography;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Wire;

public sealed class EnrolmentProofTests
{
    [Fact]
    public void SecretProof_BindsSecretNonceNameAndKey()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var nonce = RandomNumberGenerator.GetBytes(32);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var spki = key.ExportSubjectPublicKeyInfo();
        var proof = EnrolmentProof.ComputeSecretProof(secret, nonce, "a1", spki);
        Assert.True(EnrolmentProof.VerifySecretProof(secret, nonce, "a1", spki, proof));
        Assert.False(EnrolmentProof.VerifySecretProof(RandomNumberGenerator.GetBytes(32), nonce, "a1", spki, proof));
        Assert.False(EnrolmentProof.VerifySecretProof(secret, RandomNumberGenerator.GetBytes(32), "a1", spki, proof));
        Assert.False(EnrolmentProof.VerifySecretProof(secret, nonce, "a2", spki, proof));
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.False(EnrolmentProof.VerifySecretProof(secret, nonce, "a1", other.ExportSubjectPublicKeyInfo(), proof));
    }

    [Fact]
    public void NonceSignature_VerifiesOnlyWithTheSigningKey()
    {
        var nonce = RandomNumberGenerator.GetBytes(32);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var signature = EnrolmentProof.SignNonce(key, nonce);
        Assert.True(EnrolmentProof.VerifyNonceSignature(key.ExportSubjectPublicKeyInfo(), nonce, signature));
        Assert.False(EnrolmentProof.VerifyNonceSignature(other.ExportSubjectPublicKeyInfo(), nonce, signature));
        Assert.False(EnrolmentProof.VerifyNonceSignature([1, 2, 3], nonce, signature));
    }
}
