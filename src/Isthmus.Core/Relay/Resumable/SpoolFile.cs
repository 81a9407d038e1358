using System.Runtime.InteropServices;
using Isthmus.Core.Native;
using Microsoft.Win32.SafeHandles;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// One stream's spill file: an unnamed file in the spool directory (O_TMPFILE, or created and unlinked at
/// once where the file system lacks it), so nothing of it outlives the process, not even after SIGKILL. It
/// is used as a FIFO: appends at the tail, acknowledged bytes freed from the head by punching holes, and
/// the whole file is closed (its blocks freed) when the stream's spool empties.
/// </summary>
public sealed class SpoolFile : IDisposable
{
    /// <summary>Punching frees whole blocks; 4 KiB divides every common file system's block size.</summary>
    private const long Block = 4096;

    private readonly SafeFileHandle _handle;
    private long _tail;
    private long _freedTo;
    private bool _punchUnsupported;

    private SpoolFile(SafeFileHandle handle) => _handle = handle;

    /// <summary>Bytes appended so far (the next append's offset).</summary>
    public long Tail => _tail;

    /// <summary>Creates an unnamed file in <paramref name="directory"/>; throws <see cref="IOException"/> with the reason.</summary>
    public static SpoolFile Create(string directory)
    {
        var fd = Libc.Open(directory, Libc.OTmpFile | Libc.ORdWr | Libc.OCloExec, Convert.ToInt32("600", 8));
        if (fd >= 0)
        {
            return new SpoolFile(new SafeFileHandle(fd, ownsHandle: true));
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno is not (Libc.EOpNotSupp or Libc.EIsDir))
        {
            throw new IOException($"cannot create a file in {directory}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        // No O_TMPFILE here: a named file, unlinked before anything is written to it.
        var path = Path.Combine(directory, $".isthmus-spool-{Guid.NewGuid():N}");
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None);
        File.Delete(path);
        return new SpoolFile(handle);
    }

    /// <summary>Writes <paramref name="bytes"/> at the tail and returns their offset; on failure (ENOSPC, EIO) nothing is counted.</summary>
    public long Append(ReadOnlySpan<byte> bytes)
    {
        var at = _tail;
        RandomAccess.Write(_handle, bytes, at);
        _tail = at + bytes.Length;
        return at;
    }

    /// <summary>Reads exactly <paramref name="destination"/>'s length from <paramref name="offset"/>.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = RandomAccess.Read(_handle, destination, offset);
            if (n == 0)
            {
                throw new IOException($"spool file ends at {offset}, before the bytes it should hold");
            }

            destination = destination[n..];
            offset += n;
        }
    }

    /// <summary>Everything before <paramref name="offset"/> is no longer needed: frees its whole blocks.</summary>
    public void FreeTo(long offset)
    {
        var end = offset / Block * Block;
        if (_punchUnsupported || end <= _freedTo)
        {
            return;
        }

        if (Libc.Fallocate(_handle, Libc.FallocPunchHole | Libc.FallocKeepSize, _freedTo, end - _freedTo) != 0)
        {
            // The blocks are then freed when the stream's spool empties and the file is closed.
            _punchUnsupported = true;
            return;
        }

        _freedTo = end;
    }

    public void Dispose() => _handle.Dispose();
}
