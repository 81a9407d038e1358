using System.Text.Json;
using Isthmus.Core.Addressing;
using Isthmus.Core.Wire;

namespace Isthmus.Core.Naming;

/// <summary>
/// Directory entries on the wire (JSON arrays of <see cref="DirectoryNode"/>), for peer-link directory frames
/// and the router → node directory message. Decoding checks every field, since the bytes come from a peer.
/// </summary>
public static class DirectoryCodec
{
    public static byte[] Encode(IEnumerable<DirectoryEntry> entries) =>
        JsonSerializer.SerializeToUtf8Bytes([.. ToWire(entries)], ControlJsonContext.Default.DirectoryNodeArray);

    public static IReadOnlyList<DirectoryNode> ToWire(IEnumerable<DirectoryEntry> entries) =>
        [.. entries.Select(e => new DirectoryNode { Name = e.Name, Site = e.Site, Vip = IPv4.Format(e.Vip) })];

    /// <summary>Parses a JSON array of nodes; throws <see cref="ProtocolException"/> on anything malformed.</summary>
    public static IReadOnlyList<DirectoryEntry> Decode(ReadOnlySpan<byte> json)
    {
        DirectoryNode[]? nodes;
        try
        {
            nodes = JsonSerializer.Deserialize(json, ControlJsonContext.Default.DirectoryNodeArray);
        }
        catch (JsonException e)
        {
            throw new ProtocolException($"directory is not valid JSON: {e.Message}");
        }

        return FromWire(nodes ?? throw new ProtocolException("directory is JSON null"));
    }

    /// <summary>Checks and converts wire nodes; throws <see cref="ProtocolException"/> naming the first bad one.</summary>
    public static IReadOnlyList<DirectoryEntry> FromWire(IEnumerable<DirectoryNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var result = new List<DirectoryEntry>();
        foreach (var node in nodes)
        {
            if (node is null || !NodeNames.IsValid(node.Name) || !NodeNames.IsValid(node.Site) || !IPv4.TryParse(node.Vip, out var vip))
            {
                throw new ProtocolException($"directory entry is invalid: {node?.Name ?? "null"} {node?.Site} {node?.Vip}");
            }

            result.Add(new DirectoryEntry(node.Name, node.Site, vip));
        }

        return result;
    }
}
