using System.Text.Json;
using System.Text.Json.Serialization;
using Isthmus.Core;
using Isthmus.Core.Security;

namespace Isthmus.Personal.Proxy;

/// <summary>
/// <c>WORK/proxy.json</c> at a site: what every job proxy of the site needs (written by <c>up</c>, read by
/// <c>isthmus proxy WORK --name NODE</c>). Paths are the site's own.
/// </summary>
public sealed class ProxyConfig
{
    [JsonPropertyName("cluster_dir")] public required string ClusterDirectory { get; set; }

    [JsonPropertyName("site")] public required string Site { get; set; }

    /// <summary>Slurm with dynamic nodes, or none.</summary>
    [JsonPropertyName("manager")] public required string Manager { get; set; }

    [JsonPropertyName("cluster_name")] public required string ClusterName { get; set; }

    [JsonPropertyName("ctld_name")] public string? CtldName { get; set; }

    [JsonPropertyName("ctld_vip")] public string? CtldVip { get; set; }

    [JsonPropertyName("ctld_port")] public int CtldPort { get; set; }

    [JsonPropertyName("slurmd_port")] public int SlurmdPort { get; set; }

    [JsonPropertyName("cpus")] public int Cpus { get; set; } = 1;

    [JsonPropertyName("munge_key")] public string? MungeKey { get; set; }

    public static string PathIn(string workDir) => Path.Combine(workDir, "proxy.json");

    public static ProxyConfig Load(string workDir)
    {
        var path = PathIn(workDir);
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), ProxyConfigJsonContext.Default.ProxyConfig)
                ?? throw new UserException($"{path} is empty");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UserException($"{path} not found: is {workDir} a site work directory made by 'isthmus up'?", e);
        }
        catch (JsonException e)
        {
            throw new UserException($"{path} is damaged: {e.Message}", e);
        }
    }

    public string ToJson() => JsonSerializer.Serialize(this, ProxyConfigJsonContext.Default.ProxyConfig);

    public void Save(string workDir) => SecureFile.WriteAtomic(PathIn(workDir), ToJson(), secret: false);
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ProxyConfig))]
internal sealed partial class ProxyConfigJsonContext : JsonSerializerContext;
