using System.Text.Json;
using System.Text.Json.Serialization;

namespace Isthmus.Core;

/// <summary>
/// Where a node agent publishes its control socket and its description for <c>isthmus run --node NODE</c>:
/// <c>$ISTHMUS_RUNTIME_DIR</c>, else <c>$XDG_RUNTIME_DIR/isthmus</c>, else <c>/tmp/isthmus-UID</c>; mode 0700.
/// </summary>
public static class RuntimeDirectory
{
    public static string Resolve()
    {
        var explicitDir = Environment.GetEnvironmentVariable("ISTHMUS_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(explicitDir))
        {
            return explicitDir;
        }

        var xdg = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return !string.IsNullOrEmpty(xdg) ? Path.Combine(xdg, "isthmus") : $"/tmp/isthmus-{Native.Libc.GetUid()}";
    }

    public static string EnsureCreated()
    {
        var dir = Resolve();
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return dir;
    }

    public static string SocketPath(string dir, string node) => Path.Combine(dir, node + ".sock");

    public static string InfoPath(string dir, string node) => Path.Combine(dir, node + ".json");
}

/// <summary>What a running node agent tells <c>isthmus run</c> (written to NODE.json in the runtime directory).</summary>
public sealed record AgentInfo
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("site")] public required string Site { get; init; }
    [JsonPropertyName("cluster")] public required string Cluster { get; init; }
    [JsonPropertyName("vip")] public required string Vip { get; init; }
    [JsonPropertyName("network")] public required string Network { get; init; }
    [JsonPropertyName("image")] public required string Image { get; init; }
    [JsonPropertyName("data")] public required string DataEndpoint { get; init; }
    [JsonPropertyName("socket")] public required string SocketPath { get; init; }
    [JsonPropertyName("pid")] public int Pid { get; init; }
    [JsonPropertyName("node_hostname")] public bool NodeHostname { get; init; }

    /// <summary>Whether the agent offers kernel-direct LAN streams (the shim then asks DIRECT before CONNECT and adopts accepted ones).</summary>
    [JsonPropertyName("direct")] public bool Direct { get; init; }
    [JsonPropertyName("socks")] public string? Socks { get; init; }

    /// <summary>The agent's DNS responder (loopback UDP), where the seccomp supervisor sends programs' queries to resolv.conf's servers.</summary>
    [JsonPropertyName("dns")] public string? Dns { get; init; }

    public static AgentInfo Read(string path) =>
        JsonSerializer.Deserialize(File.ReadAllBytes(path), AgentInfoJsonContext.Default.AgentInfo)
        ?? throw new UserException($"{path} is empty");

    public void Write(string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(this, AgentInfoJsonContext.Default.AgentInfo));
        File.Move(tmp, path, overwrite: true);
    }
}

[JsonSerializable(typeof(AgentInfo))]
internal sealed partial class AgentInfoJsonContext : JsonSerializerContext;
