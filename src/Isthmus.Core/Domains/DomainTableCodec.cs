using System.Text.Json;
using System.Text.Json.Serialization;
using Isthmus.Core.Config;
using Isthmus.Core.Wire;

namespace Isthmus.Core.Domains;

/// <summary>
/// A domain table as JSON, the one encoding used for the router's state file, the peer-link frame and the admin
/// answer: <c>{"version":N,"domains":{"x":["a1","b1"]},"revoked":["c1"],"revoked_keys":["MFkw…"],"drain":false}</c>.
/// Keys and lists are written sorted, so equal tables encode to equal bytes (the digest depends on it).
/// Decoding checks every name, since the bytes may come from a peer.
/// </summary>
public static class DomainTableCodec
{
    public static byte[] Encode(DomainTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var wire = new DomainTableWire
        {
            Version = table.Version,
            Domains = new SortedDictionary<string, string[]>(table.Names.ToDictionary(n => n, n => table.MembersOf(n).ToArray(), StringComparer.Ordinal), StringComparer.Ordinal),
            Revoked = [.. table.Revoked],
            RevokedKeys = [.. table.RevokedKeys],
            Drain = table.Drain,
        };
        return JsonSerializer.SerializeToUtf8Bytes(wire, DomainJsonContext.Default.DomainTableWire);
    }

    public static string EncodeText(DomainTable table) => System.Text.Encoding.UTF8.GetString(Encode(table));

    /// <summary>Parses and checks a table; a <see cref="ProtocolException"/> names what is wrong.</summary>
    public static DomainTable Decode(ReadOnlySpan<byte> json)
    {
        DomainTableWire? wire;
        try
        {
            wire = JsonSerializer.Deserialize(json, DomainJsonContext.Default.DomainTableWire);
        }
        catch (JsonException e)
        {
            throw new ProtocolException($"domain table is not valid JSON: {e.Message}");
        }

        if (wire?.Domains is null || wire.Version < 0)
        {
            throw new ProtocolException("domain table has no domains object or a negative version");
        }

        if (wire.Domains.Count > DomainTable.MaxDomains)
        {
            throw new ProtocolException($"domain table has {wire.Domains.Count} domains (at most {DomainTable.MaxDomains})");
        }

        foreach (var (name, members) in wire.Domains)
        {
            if (!DnsLabel.IsValid(name) || members is null || members.Length > DomainTable.MaxMembers || !members.All(DomainMember.IsValid))
            {
                throw new ProtocolException($"domain table: domain '{name}' has an invalid name or member");
            }
        }

        var revoked = wire.Revoked ?? [];
        if (revoked.Length > DomainTable.MaxMembers || !revoked.All(r => r != DomainMember.Everyone && DomainMember.IsValid(r)))
        {
            throw new ProtocolException("domain table: invalid revoked node");
        }

        var keys = wire.RevokedKeys ?? [];
        if (keys.Length > DomainTable.MaxMembers || !keys.All(IsBase64))
        {
            throw new ProtocolException("domain table: invalid revoked key");
        }

        return new DomainTable(wire.Version, wire.Domains.Select(d => KeyValuePair.Create<string, IEnumerable<string>>(d.Key, d.Value)), revoked, keys, wire.Drain);
    }

    public static DomainTable DecodeText(string json) => Decode(System.Text.Encoding.UTF8.GetBytes(json));

    private static bool IsBase64(string? text)
    {
        if (text is null || text.Length is 0 or > 1024)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[1024];
        return Convert.TryFromBase64String(text, buffer, out _);
    }
}

internal sealed class DomainTableWire
{
    [JsonPropertyName("version")]
    public long Version { get; init; }

    [JsonPropertyName("domains")]
    public SortedDictionary<string, string[]>? Domains { get; init; }

    [JsonPropertyName("revoked")]
    public string[]? Revoked { get; init; }

    [JsonPropertyName("revoked_keys")]
    public string[]? RevokedKeys { get; init; }

    [JsonPropertyName("drain")]
    public bool Drain { get; init; }
}

[JsonSerializable(typeof(DomainTableWire))]
internal sealed partial class DomainJsonContext : JsonSerializerContext;
