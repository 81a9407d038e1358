using System.Security.Cryptography;
using System.Text;

namespace Isthmus.Core.Security;

/// <summary>
/// Writes the cluster directory's files: atomically (a reader never sees half a file) and, for secrets, with
/// mode 0600 from the moment the file exists (setting the mode after writing would leave a window in which
/// another user could open it).
/// </summary>
public static class SecureFile
{
    /// <summary>Mode of files holding keys or secrets: owner read/write.</summary>
    public const UnixFileMode SecretMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Mode of public files (certificates, the cluster file): owner read/write, others read.</summary>
    public const UnixFileMode PublicMode = SecretMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>Mode of directories Isthmus creates: owner only.</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Writes <paramref name="contents"/> (UTF-8) to a temporary file beside <paramref name="path"/>, flushes it to
    /// disk and renames it over <paramref name="path"/>.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="contents">The text.</param>
    /// <param name="secret">True for mode 0600; false for 0644 (both less the umask).</param>
    public static void WriteAtomic(string path, string contents, bool secret)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!,
            $".{Path.GetFileName(full)}.{RandomNumberGenerator.GetHexString(8, lowercase: true)}.tmp");
        try
        {
            Write(temp, contents, secret);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new UserException($"cannot write {path}: {e.Message}", e, 1);
        }
    }

    /// <summary>Creates <paramref name="path"/> with <paramref name="contents"/>; a <see cref="UserException"/> if it exists.</summary>
    public static void WriteNew(string path, string contents, bool secret)
    {
        try
        {
            Write(path, contents, secret);
        }
        catch (IOException e) when (File.Exists(path))
        {
            throw new UserException($"{path} already exists; not overwriting it", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserException($"cannot write {path}: {e.Message}", e, 1);
        }
    }

    /// <summary>
    /// Creates a directory (and its missing parents) with mode 0700. A directory that already exists keeps its
    /// mode: it may be the user's own, shared on purpose.
    /// </summary>
    /// <returns>Whether the directory was created.</returns>
    public static bool CreatePrivateDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            return false;
        }

        try
        {
            Directory.CreateDirectory(path, DirectoryMode);
            // The mode applies to parents created on the way too; set the leaf's explicitly as well, so that
            // it is 0700 whatever the umask did.
            File.SetUnixFileMode(path, DirectoryMode);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserException($"cannot create directory {path}: {e.Message}", e, 1);
        }

        return true;
    }

    private static void Write(string path, string contents, bool secret)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            UnixCreateMode = secret ? SecretMode : PublicMode,
        };

        using var stream = new FileStream(path, options);
        stream.Write(Encoding.UTF8.GetBytes(contents));
        stream.Flush(flushToDisk: true);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the temporary file has a random name and does no harm.
        }
    }
}
