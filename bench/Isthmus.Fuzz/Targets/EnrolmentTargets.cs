using CsCheck;
using Isthmus.Core.Wire;

namespace Isthmus.Fuzz.Targets;

/// <summary>The fields an enrolling node sends that the router decodes (its key and signature), hostile or not.</summary>
public static class EnrolmentTargets
{
    public static FuzzTarget Signature => new(
        "enrol-signature",
        FuzzGen.Mix(Gen.Const(ValidSpki()), 200),
        input =>
        {
            var half = input.Length / 2;
            FuzzFailureException.Assert(!EnrolmentProof.VerifyNonceSignature(input.AsSpan(0, half), "nonce"u8, input.AsSpan(half)) || half > 0, "empty key verified");
        });

    private static byte[] ValidSpki()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        byte[] spki = key.ExportSubjectPublicKeyInfo();
        return [.. spki, .. EnrolmentProof.SignNonce(key, "nonce"u8)];
    }
}
