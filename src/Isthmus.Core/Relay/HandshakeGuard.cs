using System.Net.Sockets;

namespace Isthmus.Core.Relay;

/// <summary>
/// Bounds the connections of one listener that have not yet proved who they are (TLS handshake, leg header,
/// enrolment), in count and in time. Every accepted connection is admitted; if <see cref="MaxPending"/> are
/// already waiting, the oldest is shut down to make room, so a flood of half-open connections costs the
/// flooder its own oldest connections rather than locking out a legitimate peer, whose handshake takes
/// milliseconds. But only once that oldest has waited <see cref="EvictableAfter"/>: a legitimate burst (a
/// program opening a thousand connections at once, each a non-blocking connect whose header is already sent)
/// can outrun a loaded router's handshakes for a moment, and shutting those down would break connections
/// their programs already consider open. A burst may go past <see cref="MaxPending"/> up to
/// <see cref="BurstFactor"/> times it; beyond that the oldest goes, however young. A connection still pending after <see cref="Deadline"/> (one deadline for the whole
/// handshake, not per byte: a slow-loris sender trickling one byte a second gains nothing) is shut down too.
/// Shutting down (not disposing) makes the handler's pending read end with end-of-stream, so the handler
/// logs and closes as for any truncated handshake, and nothing races a disposed socket.
/// </summary>
public sealed class HandshakeGuard : IDisposable
{
    private readonly object _lock = new();
    private readonly LinkedList<PendingHandshake> _pending = new();
    private readonly TimeProvider _time;
    private readonly ITimer _sweeper;
    private long _timedOut;
    private long _evicted;

    /// <summary>How far past <see cref="MaxPending"/> a burst of connections younger than <see cref="EvictableAfter"/> may go.</summary>
    public const int BurstFactor = 8;

    /// <param name="maxPending">Connections of this listener allowed to be in their handshake at once.</param>
    /// <param name="deadline">How long a connection may take from accept to authenticated.</param>
    public HandshakeGuard(int maxPending, TimeSpan deadline, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPending);
        MaxPending = maxPending;
        Deadline = deadline;
        _time = time ?? TimeProvider.System;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(deadline.TotalMilliseconds / 10, 50, 500));
        _sweeper = _time.CreateTimer(_ => Sweep(), null, period, period);
    }

    public int MaxPending { get; }

    /// <summary>How long a pending connection must have waited before a newer one may push it out (a tenth of the deadline).</summary>
    public TimeSpan EvictableAfter => Deadline / 10;

    public TimeSpan Deadline { get; }

    /// <summary>Connections in their handshake now.</summary>
    public int Pending
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Connections shut down because their handshake outlived the deadline.</summary>
    public long TimedOut => Interlocked.Read(ref _timedOut);

    /// <summary>Connections shut down to make room for a newer one.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>Admits an accepted connection; dispose the result (or call <see cref="PendingHandshake.Authenticated"/>) when its handshake is over.</summary>
    public PendingHandshake Admit(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var pending = new PendingHandshake(this, socket, _time.GetTimestamp());
        PendingHandshake? evict = null;
        lock (_lock)
        {
            if (_pending.Count >= MaxPending)
            {
                var oldest = _pending.First!.Value;
                if (_pending.Count >= MaxPending * BurstFactor || _time.GetElapsedTime(oldest.AdmittedAt) >= EvictableAfter)
                {
                    evict = oldest;
                    Unlink(evict);
                }
            }

            pending.Node = _pending.AddLast(pending);
        }

        if (evict is not null)
        {
            Interlocked.Increment(ref _evicted);
            evict.ShutDown();
        }

        return pending;
    }

    internal void Release(PendingHandshake pending)
    {
        lock (_lock)
        {
            Unlink(pending);
        }
    }

    private void Unlink(PendingHandshake pending)
    {
        if (pending.Node is { } node)
        {
            _pending.Remove(node);
            pending.Node = null;
        }
    }

    private void Sweep()
    {
        List<PendingHandshake>? expired = null;
        lock (_lock)
        {
            // Oldest first: stop at the first one still within its deadline.
            while (_pending.First is { } first && _time.GetElapsedTime(first.Value.AdmittedAt) > Deadline)
            {
                (expired ??= []).Add(first.Value);
                Unlink(first.Value);
            }
        }

        foreach (var pending in expired ?? [])
        {
            Interlocked.Increment(ref _timedOut);
            pending.ShutDown();
        }
    }

    public void Dispose() => _sweeper.Dispose();
}

/// <summary>One admitted connection in its handshake. Disposing it (or authenticating) ends its deadline.</summary>
public sealed class PendingHandshake : IDisposable
{
    private readonly HandshakeGuard _guard;
    private readonly Socket _socket;

    internal PendingHandshake(HandshakeGuard guard, Socket socket, long admittedAt)
    {
        _guard = guard;
        _socket = socket;
        AdmittedAt = admittedAt;
    }

    internal long AdmittedAt { get; }

    internal LinkedListNode<PendingHandshake>? Node { get; set; }

    /// <summary>True once the guard shut this connection down (deadline or eviction).</summary>
    public bool WasShutDown { get; private set; }

    /// <summary>The peer proved who it is: the connection leaves the guard and lives as long as its stream.</summary>
    public void Authenticated() => _guard.Release(this);

    public void Dispose() => _guard.Release(this);

    internal void ShutDown()
    {
        WasShutDown = true;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
    }
}
