using System.Diagnostics;

namespace Isthmus.Core.Tests.Relay.Resumable;

/// <summary>
/// A small tmpfs mounted on a fresh directory (the tests run as root, as CI does): a real file system that
/// fills up (ENOSPC) or refuses writes (read-only), and whose free space shows what spool files hold.
/// </summary>
internal sealed class TmpfsMount : IDisposable
{
    private TmpfsMount(string path) => Path = path;

    public string Path { get; }

    /// <summary>Bytes in use (statvfs); what a spool file holds, punched holes not counted.</summary>
    public long Used
    {
        get
        {
            var drive = new DriveInfo(Path);
            return drive.TotalSize - drive.AvailableFreeSpace;
        }
    }

    public static TmpfsMount Create(long sizeBytes, bool readOnly = false)
    {
        var path = Directory.CreateTempSubdirectory("isthmus-spool-").FullName;
        var options = $"size={sizeBytes},mode=0700" + (readOnly ? ",ro" : "");
        Run("mount", "-t", "tmpfs", "-o", options, "isthmus-spool-test", path);
        return new TmpfsMount(path);
    }

    public void Dispose()
    {
        // Lazily: a test that failed may leave a spool file open; the mount then goes when it closes.
        Run("umount", "-l", Path);
        Directory.Delete(Path);
    }

    private static void Run(string file, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed (root needed): {error}");
        }
    }
}
