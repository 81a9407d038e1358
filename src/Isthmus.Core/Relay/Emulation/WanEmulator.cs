using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Isthmus.Core.Relay.Emulation;

/// <summary>
/// A router's WAN emulator (<c>--wan-emulation</c>, <c>wan_emulation</c> in the cluster file): every WAN
/// connection's socket is wrapped (<see cref="Wrap"/>) below TLS, so what this router sends is delayed,
/// jittered and rate-limited; datagram frames are dropped with the loss probability; at scheduled outages
/// every wrapped connection is shut down and <see cref="IsOut"/> makes the router refuse WAN connections.
/// One dedicated thread (<see cref="ReleaseClock"/>) times the releases; one timer watches the schedule.
/// </summary>
public sealed class WanEmulator : IDisposable
{
    private readonly ConcurrentDictionary<EmulatedSendStream, byte> _live = new();
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly Lock _rateLock = new();
    private readonly ILogger _logger;
    private readonly Timer? _schedule;
    private readonly long _delayTicks;
    private readonly long _jitterTicks;
    private long _linkFree;
    private bool _wasOut;

    public WanEmulator(WanEmulationSpec spec, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        _logger = logger;
        _delayTicks = (long)(spec.Delay.TotalSeconds * Stopwatch.Frequency);
        _jitterTicks = (long)(spec.Jitter.TotalSeconds * Stopwatch.Frequency);
        Clock = spec.ShapesBytes ? new ReleaseClock() : null!;
        if (spec.Outage is not null)
        {
            // 50 ms resolution is plenty for outages of seconds; the check is cheap.
            _schedule = new Timer(_ => WatchSchedule(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(50));
        }
    }

    public WanEmulationSpec Spec { get; }

    internal ReleaseClock Clock { get; }

    /// <summary>Whether a scheduled outage is on now: WAN connections are refused and dials fail.</summary>
    public bool IsOut => Spec.Outage?.IsOut(Stopwatch.GetElapsedTime(_started)) == true;

    /// <summary>The stream to use for a connected WAN socket (under TLS, if any).</summary>
    /// <exception cref="IOException">An emulated outage is on.</exception>
    public Stream Wrap(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (IsOut)
        {
            throw new IOException("emulated WAN outage");
        }

        var stream = new EmulatedSendStream(socket, this);
        _live[stream] = 0;
        return stream;
    }

    /// <summary>Whether to drop this datagram frame (emulated loss).</summary>
    public bool DropDatagram() => Spec.Loss > 0 && Random.Shared.NextDouble() < Spec.Loss;

    /// <summary>
    /// When <paramref name="bytes"/> sent now would arrive: the link serialises all this router's WAN sends at
    /// the rate (a token bucket with no burst: the link is free again after the last send's bits), then adds
    /// the delay ± a uniform jitter.
    /// </summary>
    internal long DueTime(int bytes)
    {
        var now = Stopwatch.GetTimestamp();
        var departure = now;
        if (Spec.RateBitsPerSecond > 0 && bytes > 0)
        {
            var wire = (long)((double)bytes * 8 * Stopwatch.Frequency / Spec.RateBitsPerSecond);
            lock (_rateLock)
            {
                _linkFree = Math.Max(_linkFree, now) + wire;
                departure = _linkFree;
            }
        }

        var jitter = _jitterTicks > 0 ? Random.Shared.NextInt64(-_jitterTicks, _jitterTicks + 1) : 0;
        return departure + _delayTicks + jitter;
    }

    internal void Forget(EmulatedSendStream stream) => _live.TryRemove(stream, out _);

    private void WatchSchedule()
    {
        var isOut = IsOut;
        if (isOut == _wasOut)
        {
            return;
        }

        _wasOut = isOut;
        if (isOut)
        {
            var broken = 0;
            foreach (var stream in _live.Keys)
            {
                stream.Break("emulated WAN outage");
                broken++;
            }

            _logger.LogWarning("WAN emulator: outage begins ({Outage}); {Count} WAN connections shut down, new ones refused", Spec.Outage, broken);
        }
        else
        {
            _logger.LogWarning("WAN emulator: outage ends; WAN connections allowed again");
        }
    }

    public void Dispose()
    {
        _schedule?.Dispose();
        Clock?.Dispose();
    }
}
