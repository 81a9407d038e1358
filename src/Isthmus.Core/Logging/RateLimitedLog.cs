using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Logging;

/// <summary>
/// Log lines about offenders (garbage, failed handshakes, refused legs) at most <c>linesPerSecond</c> a second,
/// so that a flood of bad connections cannot turn into a flood of the log (disk, CPU, and the lines that
/// matter scrolled away). What is suppressed is counted and said in the next line that passes; the metrics
/// counters keep the exact totals.
/// </summary>
public sealed class RateLimitedLog(ILogger logger, int linesPerSecond = 20, TimeProvider? time = null)
{
    private readonly object _lock = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private long _windowStart = long.MinValue;
    private int _lines;
    private long _suppressed;

    /// <summary>Lines dropped since the log started.</summary>
    public long TotalSuppressed { get; private set; }

    public void Warning(string template, params object?[] args) => Write(LogLevel.Warning, template, args);

    public void Information(string template, params object?[] args) => Write(LogLevel.Information, template, args);

    private void Write(LogLevel level, string template, object?[] args)
    {
        if (!logger.IsEnabled(level))
        {
            return;
        }

        long suppressed;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            if (_windowStart == long.MinValue || _time.GetElapsedTime(_windowStart, now) >= TimeSpan.FromSeconds(1))
            {
                _windowStart = now;
                _lines = 0;
            }

            if (++_lines > linesPerSecond)
            {
                _suppressed++;
                TotalSuppressed++;
                return;
            }

            suppressed = _suppressed;
            _suppressed = 0;
        }

        if (suppressed > 0)
        {
            logger.Log(level, "{Suppressed} similar lines suppressed (at most {Limit} a second)", suppressed, linesPerSecond);
        }

#pragma warning disable CA2254 // The template is one of the caller's constants, passed through.
        logger.Log(level, template, args);
#pragma warning restore CA2254
    }
}
