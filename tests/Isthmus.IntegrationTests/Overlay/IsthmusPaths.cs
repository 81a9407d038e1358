namespace Isthmus.IntegrationTests.Overlay;

/// <summary>
/// Where the built <c>isthmus</c> executable and the native programs of this build are: this build's
/// src/Isthmus.Cli output, or the directory named by <see cref="DirectoryVariable"/> (a published build, e.g.
/// the NativeAOT one, which has the same layout: <c>isthmus</c> and <c>native/</c> beside it).
/// </summary>
public static class IsthmusPaths
{
    /// <summary>Environment variable that points the tests at another directory holding <c>isthmus</c>.</summary>
    public const string DirectoryVariable = "ISTHMUS_TEST_BIN_DIR";

    private static readonly Lazy<string> CliDirectory = new(Find);

    public static string Isthmus => Path.Combine(CliDirectory.Value, "isthmus");

    public static string Native(string name) => Path.Combine(CliDirectory.Value, "native", name);

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } published)
        {
            return File.Exists(Path.Combine(published, "isthmus")) ? Path.GetFullPath(published)
                : throw new InvalidOperationException($"{DirectoryVariable}={published} holds no isthmus executable");
        }

        // tests/Isthmus.IntegrationTests/bin/<Configuration>/net10.0/ → src/Isthmus.Cli/bin/<Configuration>/net10.0/
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var framework = testBin.Name;
        var configuration = testBin.Parent!.Name;
        var root = testBin;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Isthmus.slnx")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            throw new InvalidOperationException($"cannot find the repository root above {AppContext.BaseDirectory}");
        }

        var dir = Path.Combine(root.FullName, "src", "Isthmus.Cli", "bin", configuration, framework);
        return File.Exists(Path.Combine(dir, "isthmus")) ? dir
            : throw new InvalidOperationException($"isthmus is not built at {dir}; run 'dotnet build -c {configuration}'");
    }
}
