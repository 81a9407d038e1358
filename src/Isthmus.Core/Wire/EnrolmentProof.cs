using System.Security.Cryptography;
using System.Text;

namespace Isthmus.Core.Wire;

/// <summary>
/// What a node shows its router to enrol: an HMAC proving it holds the cluster's enrol secret, and a
/// signature proving it holds the private key its name is bound to. Both cover the router's fresh nonce,
/// so a recorded enrolment cannot be replayed.
/// </summary>
public static class EnrolmentProof
{
    public static byte[] ComputeSecretProof(ReadOnlySpan<byte> enrolSecret, ReadOnlySpan<byte> nonce, string name, ReadOnlySpan<byte> spki)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var message = new byte[nonce.Length + 1 + nameBytes.Length + 1 + spki.Length];
        nonce.CopyTo(message);
        nameBytes.CopyTo(message.AsSpan(nonce.Length + 1));
        spki.CopyTo(message.AsSpan(nonce.Length + 1 + nameBytes.Length + 1));
        return HMACSHA256.HashData(enrolSecret, message);
    }

    public static bool VerifySecretProof(ReadOnlySpan<byte> enrolSecret, ReadOnlySpan<byte> nonce, string name, ReadOnlySpan<byte> spki, ReadOnlySpan<byte> proof) =>
        CryptographicOperations.FixedTimeEquals(ComputeSecretProof(enrolSecret, nonce, name, spki), proof);

    public static byte[] SignNonce(ECDsa key, ReadOnlySpan<byte> nonce) => key.SignData(nonce, HashAlgorithmName.SHA256);

    public static bool VerifyNonceSignature(ReadOnlySpan<byte> spki, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> signature)
    {
        try
        {
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(spki, out _);
            return key.VerifyData(nonce, signature, HashAlgorithmName.SHA256);
        }
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException)
        {
            // A key on a curve this platform lacks (any OID fits in an SPKI) throws the latter (found by fuzzing).
            return false;
        }
    }
}
