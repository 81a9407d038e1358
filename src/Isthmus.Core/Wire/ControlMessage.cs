using System.Text.Json.Serialization;

namespace Isthmus.Core.Wire;

/// <summary>
/// One message on the node ↔ router control channel. The channel is rare and small (enrolment, keepalive,
/// leave), so the messages are flat JSON objects: easy to log, easy to extend without breaking old peers.
/// </summary>
public sealed record ControlMessage
{
    public const string Challenge = "challenge";
    public const string Enrol = "enrol";
    public const string Enrolled = "enrolled";
    public const string Error = "error";
    public const string Ping = "ping";
    public const string Pong = "pong";
    public const string Leave = "leave";
    public const string Directory = "directory";

    /// <summary>Node → router: may this node open a kernel-direct stream to <see cref="Vip"/>:<see cref="Port"/>? Answered by <see cref="DirectGrant"/> with the same <see cref="Id"/>.</summary>
    public const string Direct = "direct";

    /// <summary>Router → node: <see cref="Code"/> "ok" with <see cref="Endpoint"/> and <see cref="Header"/>, or another code (use the router path).</summary>
    public const string DirectGrant = "direct-grant";

    /// <summary>CLI → router, instead of <see cref="Enrol"/>: an authenticated administrative request (see <see cref="AdminRequest"/>).</summary>
    public const string Admin = "admin";

    /// <summary>Router → CLI: the domain table after the request was applied.</summary>
    public const string AdminResult = "admin-result";

    [JsonPropertyName("type")]
    public required string Type { get; init; }

    [JsonPropertyName("nonce")]
    public string? Nonce { get; init; }

    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("spki")]
    public string? PublicKey { get; init; }

    [JsonPropertyName("data")]
    public string? DataEndpoint { get; init; }

    /// <summary>For <see cref="Enrol"/>: the port of the agent's direct-stream listener (same address as the data port); absent: none.</summary>
    [JsonPropertyName("direct_port")]
    public int? DirectPort { get; init; }

    /// <summary>For <see cref="Direct"/> and <see cref="DirectGrant"/>: matches an answer to its request.</summary>
    [JsonPropertyName("id")]
    public ulong? Id { get; init; }

    /// <summary>For <see cref="Direct"/>: the destination port.</summary>
    [JsonPropertyName("port")]
    public int? Port { get; init; }

    /// <summary>For <see cref="DirectGrant"/>: the destination agent's direct listener, "ip:port".</summary>
    [JsonPropertyName("endpoint")]
    public string? Endpoint { get; init; }

    /// <summary>For <see cref="DirectGrant"/>: the grant, a <see cref="LegKind.DirectStream"/> leg header (base64).</summary>
    [JsonPropertyName("header")]
    public string? Header { get; init; }

    /// <summary>For <see cref="Enrolled"/>: true if this router grants direct streams (the node may send <see cref="Direct"/>).</summary>
    [JsonPropertyName("direct")]
    public bool? DirectGrants { get; init; }

    [JsonPropertyName("proof")]
    public string? Proof { get; init; }

    [JsonPropertyName("signature")]
    public string? Signature { get; init; }

    [JsonPropertyName("vip")]
    public string? Vip { get; init; }

    [JsonPropertyName("session_id")]
    public ulong? SessionId { get; init; }

    [JsonPropertyName("session_key")]
    public string? SessionKey { get; init; }

    [JsonPropertyName("lease_seconds")]
    public int? LeaseSeconds { get; init; }

    [JsonPropertyName("code")]
    public string? Code { get; init; }

    [JsonPropertyName("message")]
    public string? Message { get; init; }

    /// <summary>For <see cref="Admin"/>: the request as JSON text (the proof covers these exact bytes).</summary>
    [JsonPropertyName("request")]
    public string? Request { get; init; }

    /// <summary>For <see cref="AdminResult"/>: the domain table as JSON text.</summary>
    [JsonPropertyName("table")]
    public string? Table { get; init; }

    /// <summary>For <see cref="Directory"/>: every node of the cluster the router knows of (router → node, on change).</summary>
    [JsonPropertyName("nodes")]
    public IReadOnlyList<DirectoryNode>? Nodes { get; init; }
}

/// <summary>One node in a directory message or a peer link's directory frame.</summary>
public sealed record DirectoryNode
{
    [JsonPropertyName("name")]
    public required string Name { get; init; }

    [JsonPropertyName("site")]
    public required string Site { get; init; }

    [JsonPropertyName("vip")]
    public required string Vip { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ControlMessage))]
[JsonSerializable(typeof(DirectoryNode[]))]
internal sealed partial class ControlJsonContext : JsonSerializerContext;
