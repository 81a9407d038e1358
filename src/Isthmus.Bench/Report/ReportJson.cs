using System.Text.Json;
using System.Text.Json.Serialization;

namespace Isthmus.Bench.Report;

/// <summary>The machine-readable report (<c>--json FILE</c>): environment, run settings, summaries, every raw figure, failures.</summary>
public static class ReportJson
{
    public static void Write(string path, BenchReport report)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(report, BenchJsonContext.Default.BenchReport));
    }

    public static BenchReport Read(string path) =>
        JsonSerializer.Deserialize(File.ReadAllBytes(path), BenchJsonContext.Default.BenchReport) ?? throw new JsonException($"{path} is empty");
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(BenchReport))]
internal sealed partial class BenchJsonContext : JsonSerializerContext
{
}
