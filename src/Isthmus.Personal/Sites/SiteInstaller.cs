using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using Isthmus.Core.Security;
using Isthmus.Personal.Spec;

namespace Isthmus.Personal.Sites;

/// <summary>
/// Puts what a site needs into its work directory. A local site uses this machine's isthmus and cluster
/// directory. A remote site gets, over ssh (tar streams into <c>sh -c 'tar -x'</c>): <c>WORK/bin/</c>, a copy
/// of this build (the isthmus executable's directory, native libraries included), replaced only when its
/// <c>.build</c> hash differs; <c>WORK/cluster/</c>, the part of the cluster directory the site's router and
/// nodes need (never the CA key, never other sites' router keys); <c>WORK/munge.key</c>.
/// </summary>
public static class SiteInstaller
{
    private static readonly Lazy<string> BuildHash = new(ComputeBuildHash);

    /// <summary>A hash over every file of this build (names and contents), so an outdated copy at a site is replaced.</summary>
    public static string Build => BuildHash.Value;

    /// <summary>Makes the remote work directory and returns its absolute path.</summary>
    public static async Task<string> ResolveWorkDirAsync(SiteShell shell, string workDir, CancellationToken cancellationToken)
    {
        var output = await shell.CheckAsync("making the work directory",
            $"mkdir -p {QuotePath(workDir)} && chmod 700 {QuotePath(workDir)} && cd {QuotePath(workDir)} && pwd", cancellationToken: cancellationToken).ConfigureAwait(false);
        return output.Trim();
    }

    /// <summary>Copies this build to WORK/bin unless the same build is there; true when it copied.</summary>
    public static async Task<bool> InstallBuildAsync(SiteShell shell, string workDir, CancellationToken cancellationToken)
    {
        var bin = Path.Combine(workDir, "bin");
        var current = await shell.RunAsync($"cat {SiteShell.Quote(Path.Combine(bin, ".build"))} 2>/dev/null", cancellationToken: cancellationToken).ConfigureAwait(false);
        if (current.StandardOutput.Trim() == Build)
        {
            return false;
        }

        using var tar = new MemoryStream();
        await TarFile.CreateFromDirectoryAsync(AppContext.BaseDirectory, tar, includeBaseDirectory: false, cancellationToken).ConfigureAwait(false);
        tar.Position = 0;
        await shell.CheckAsync("copying Isthmus", $"rm -rf {SiteShell.Quote(bin)} && mkdir -p {SiteShell.Quote(bin)} && tar -xf - -C {SiteShell.Quote(bin)} && echo {Build} > {SiteShell.Quote(Path.Combine(bin, ".build"))}",
            TimeSpan.FromMinutes(5), tar, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Copies the site's part of the cluster directory and the munge key (if any) into WORK.</summary>
    public static async Task InstallClusterAsync(SiteShell shell, ClusterDirectory cluster, string site, string? mungeKey, string workDir, CancellationToken cancellationToken)
    {
        using var tar = new MemoryStream();
        await using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            void Add(string source, string name, bool secret)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
                {
                    Mode = secret ? UnixFileMode.UserRead | UnixFileMode.UserWrite : (UnixFileMode)0x1A4,
                    DataStream = new MemoryStream(File.ReadAllBytes(source)),
                };
                writer.WriteEntry(entry);
            }

            Add(cluster.ClusterFilePath, "cluster/cluster.toml", false);
            Add(cluster.CaCertificatePath, "cluster/ca.crt", false);
            Add(cluster.EnrolSecretPath, "cluster/enrol.secret", true);
            Add(cluster.RouterSecretPath, "cluster/router.secret", true);
            Add(cluster.RouterCertificatePath(site), $"cluster/sites/{site}/router.crt", false);
            Add(cluster.RouterKeyPath(site), $"cluster/sites/{site}/router.key", true);
            if (mungeKey is not null)
            {
                Add(mungeKey, "munge.key", true);
            }
        }

        tar.Position = 0;
        await shell.CheckAsync("copying the cluster files", $"cd {SiteShell.Quote(workDir)} && rm -rf cluster && tar -xf - && chmod 700 cluster",
            input: tar, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The default work directory at a site: relative paths are under the login's home directory.</summary>
    public static string DefaultRemoteWorkDir(string cluster) => ".isthmus/" + cluster;

    // "~/x" and relative paths stay unquoted at their start, so the remote shell expands the home directory.
    private static string QuotePath(string path) => path.StartsWith("~/", StringComparison.Ordinal) ? "~/" + SiteShell.Quote(path[2..]) : SiteShell.Quote(path);

    private static string ComputeBuildHash()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var root = AppContext.BaseDirectory;
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(Path.GetRelativePath(root, file) + "\0"));
            hash.AppendData(File.ReadAllBytes(file));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..32];
    }

    internal static bool IsLocal(SiteSpec site) => site.Access == AccessKind.Local;
}
