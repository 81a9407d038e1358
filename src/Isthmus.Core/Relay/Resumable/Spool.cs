using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// A router's spool (<c>--wan-spool DIR</c>, <c>--wan-spool-limit</c>): where streams put what their programs
/// keep sending while the WAN leg is down and their memory bound is reached. One unnamed file per stream
/// that spills (<see cref="SpoolFile"/>), all of them together at most <see cref="Limit"/> bytes of
/// unacknowledged data. When writing fails (disk full, I/O error) the spool is suspended for a while and the
/// streams fall back to flow control; the bytes of the failed write stay in memory, so nothing is lost.
/// </summary>
public sealed class Spool
{
    /// <summary>After a failed write, streams use flow control for this long before the spool is tried again.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(10);

    /// <summary><c>--wan-spool-limit</c>'s default: all streams of a router together.</summary>
    public const long DefaultLimit = 1L << 30;

    private readonly ILogger _logger;
    private long _used;
    private long _suspendedUntil;
    private int _failing;

    public Spool(string directory, long limit, ILogger logger)
    {
        Directory = directory;
        Limit = limit;
        _logger = logger;
    }

    public string Directory { get; }

    public long Limit { get; }

    /// <summary>Bytes reserved or held by all streams' spool files.</summary>
    public long Used => Interlocked.Read(ref _used);

    /// <summary>A write failed less than <see cref="RetryAfter"/> ago.</summary>
    public bool Suspended => Stopwatch.GetTimestamp() < Interlocked.Read(ref _suspendedUntil);

    /// <summary>Checks at start that <paramref name="directory"/> can hold spool files; a clear error if not.</summary>
    public static Spool Open(string directory, long limit, ILogger logger)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            throw new UserException($"--wan-spool {directory}: no such directory (create it, on a local disk with room for --wan-spool-limit)");
        }

        try
        {
            using var probe = SpoolFile.Create(directory);
            var bytes = new byte[4096];
            probe.Append(bytes);
            probe.Read(0, bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserException($"--wan-spool {directory}: cannot write spool files there ({e.Message})", e);
        }

        return new Spool(Path.GetFullPath(directory), limit, logger);
    }

    /// <summary>Reserves <paramref name="bytes"/> if the spool is usable and under its limit.</summary>
    public bool TryReserve(long bytes)
    {
        if (Suspended)
        {
            return false;
        }

        while (true)
        {
            var used = Interlocked.Read(ref _used);
            if (used + bytes > Limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _used, used + bytes, used) == used)
            {
                return true;
            }
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);

    /// <summary>A new stream file, or null (the failure is reported) if the directory refuses one.</summary>
    public SpoolFile? TryCreateFile()
    {
        try
        {
            return SpoolFile.Create(Directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Failed(e);
            return null;
        }
    }

    /// <summary>Writing or creating a spool file failed: flow control for <see cref="RetryAfter"/>, logged once per episode.</summary>
    public void Failed(Exception error)
    {
        Interlocked.Exchange(ref _suspendedUntil, Stopwatch.GetTimestamp() + (long)(RetryAfter.TotalSeconds * Stopwatch.Frequency));
        if (Interlocked.Exchange(ref _failing, 1) == 0)
        {
            _logger.LogWarning("WAN spool {Dir}: write failed ({Reason}); streams fall back to flow control (nothing is lost), retrying the spool in {Seconds} s",
                Directory, error.Message, RetryAfter.TotalSeconds);
        }
    }

    /// <summary>A spool write succeeded: if writes had failed, say that the spool works again.</summary>
    public void Succeeded()
    {
        if (Volatile.Read(ref _failing) == 1 && Interlocked.Exchange(ref _failing, 0) == 1)
        {
            _logger.LogInformation("WAN spool {Dir}: writable again", Directory);
        }
    }
}
