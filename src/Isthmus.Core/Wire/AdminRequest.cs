using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Isthmus.Core.Wire;

/// <summary>
/// What <c>isthmus domain …</c> and <c>isthmus node revoke</c> ask a router to do. It travels as JSON text in
/// the <c>request</c> field of an <c>admin</c> control message, with <c>proof</c> = base64
/// HMAC-SHA256(router secret, "isthmus-admin-v1" ‖ 0 ‖ router's nonce ‖ request bytes): only a holder of the
/// cluster's router secret can change domains, and a recorded request cannot be replayed (fresh nonce).
/// </summary>
public sealed record AdminRequest
{
    public const string List = "list";
    public const string DomainCreate = "domain-create";
    public const string DomainDelete = "domain-delete";
    public const string DomainAdd = "domain-add";
    public const string DomainRemove = "domain-remove";
    public const string NodeRevoke = "node-revoke";

    private static readonly byte[] ProofLabel = Encoding.ASCII.GetBytes("isthmus-admin-v1\0");

    [JsonPropertyName("op")]
    public required string Op { get; init; }

    [JsonPropertyName("domain")]
    public string? Domain { get; init; }

    /// <summary>For domain-add/remove: the members; for node-revoke: the one node.</summary>
    [JsonPropertyName("nodes")]
    public IReadOnlyList<string>? Nodes { get; init; }

    /// <summary>For domain-remove/delete: let established streams the change forbids run until they end.</summary>
    [JsonPropertyName("drain")]
    public bool Drain { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, AdminJsonContext.Default.AdminRequest);

    /// <summary>Parses a request; a <see cref="ProtocolException"/> if it is not one.</summary>
    public static AdminRequest Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, AdminJsonContext.Default.AdminRequest) ?? throw new ProtocolException("admin request is JSON null");
        }
        catch (JsonException e)
        {
            throw new ProtocolException($"admin request is not valid: {e.Message}");
        }
    }

    public static byte[] ComputeProof(ReadOnlySpan<byte> routerSecret, ReadOnlySpan<byte> nonce, string request)
    {
        var body = Encoding.UTF8.GetBytes(request);
        var message = new byte[ProofLabel.Length + nonce.Length + body.Length];
        ProofLabel.CopyTo(message, 0);
        nonce.CopyTo(message.AsSpan(ProofLabel.Length));
        body.CopyTo(message, ProofLabel.Length + nonce.Length);
        return HMACSHA256.HashData(routerSecret, message);
    }

    public static bool VerifyProof(ReadOnlySpan<byte> routerSecret, ReadOnlySpan<byte> nonce, string request, ReadOnlySpan<byte> proof) =>
        CryptographicOperations.FixedTimeEquals(ComputeProof(routerSecret, nonce, request), proof);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AdminRequest))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;
