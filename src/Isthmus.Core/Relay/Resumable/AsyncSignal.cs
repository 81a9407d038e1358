using System.Threading.Tasks.Sources;

namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// An auto-reset wake-up for one waiter. Setters change state first and then call <see cref="Set"/>; the
/// waiter re-checks all state after every wake-up, so a coalesced signal loses nothing.
/// </summary>
/// <remarks>
/// Every relayed stream has a few of these and waits on one while idle, so an idle wait must cost little: the
/// signal is its own reusable <see cref="IValueTaskSource{TResult}"/> (no Task, no SemaphoreSlim node per wait),
/// an infinite wait starts no timer, and a token that cannot be cancelled registers nothing. A SemaphoreSlim
/// wait with a timeout held a timer, a linked token source and a task per idle stream.
/// </remarks>
internal sealed class AsyncSignal : IValueTaskSource<bool>
{
    // _state: the low two bits are the phase, the rest counts waits, so a late timer of an earlier wait
    // cannot end a later one.
    private const long Idle = 0;
    private const long Pending = 1;
    private const long Waiting = 2;
    private const long PhaseMask = 3;
    private const long OneWait = 4;

    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private long _state;
    private CancellationTokenRegistration _registration;
    private Timer? _timer;

    /// <summary>
    /// The signal in <paramref name="field"/>, made on first use: for waits that most streams never make (room in
    /// a full buffer, a resume offer). The waiter calls this before it checks its state, and setters use
    /// <see cref="SetIfMade"/>, so a wake-up between that check and the wait is not lost.
    /// </summary>
    public static AsyncSignal Made(ref AsyncSignal? field)
    {
        var made = Volatile.Read(ref field);
        if (made is not null)
        {
            return made;
        }

        // The exchange is a full fence: the waiter's state checks come after the signal is visible.
        return Interlocked.CompareExchange(ref field, made = new AsyncSignal(), null) ?? made;
    }

    /// <summary>Sets the signal in <paramref name="field"/> if a waiter made it; nobody waits on one not made.</summary>
    public static void SetIfMade(ref AsyncSignal? field) =>
        // A full fence between the setter's state change and this read (a plain read could move before it).
        Interlocked.CompareExchange(ref field, null, null)?.Set();

    public void Set()
    {
        while (true)
        {
            var state = Interlocked.Read(ref _state);
            switch (state & PhaseMask)
            {
                case Pending:
                    return;
                case Idle:
                    if (Interlocked.CompareExchange(ref _state, state | Pending, state) == state)
                    {
                        return;
                    }

                    break;
                default:
                    if (TryEnd(state, signalled: true, canceled: false))
                    {
                        return;
                    }

                    break;
            }
        }
    }

    /// <summary>
    /// True if signalled (also when the signal was set before the call), false on timeout; throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is cancelled. One
    /// waiter at a time; await the result before the next call.
    /// </summary>
    public ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        if (TryConsume())
        {
            return new ValueTask<bool>(true);
        }

        if (timeout == TimeSpan.Zero)
        {
            return new ValueTask<bool>(false);
        }

        var current = Interlocked.Read(ref _state);
        if ((current & PhaseMask) != Idle)
        {
            // Set since TryConsume (one waiter: nothing else changes an idle signal).
            TryConsume();
            return new ValueTask<bool>(true);
        }

        // Everything the wait needs is in place before it is published as waiting, so the completion (on
        // another thread) always finds it; a timer or cancellation that fires before that is caught below.
        var waiting = current + OneWait + Waiting;
        _core.Reset();
        var expiry = timeout == Timeout.InfiniteTimeSpan ? null : new Expiry(this, waiting);
        _timer = expiry is null ? null : new Timer(static e => ((Expiry)e!).Fire(), expiry, timeout, Timeout.InfiniteTimeSpan);
        _registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static (s, _) => ((AsyncSignal)s!).Cancel(), this)
            : default;
        if (Interlocked.CompareExchange(ref _state, waiting, current) != current)
        {
            // Set in the meantime (the only other change an idle signal can see): take it.
            Release();
            TryConsume();
            return new ValueTask<bool>(true);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            TryEnd(waiting, signalled: false, canceled: true);
        }
        else if (expiry is { Fired: true })
        {
            TryEnd(waiting, signalled: false, canceled: false);
        }

        return new ValueTask<bool>(this, _core.Version);
    }

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        Release();
        return _core.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private bool TryConsume()
    {
        var state = Interlocked.Read(ref _state);
        return (state & PhaseMask) == Pending && Interlocked.CompareExchange(ref _state, state & ~PhaseMask, state) == state;
    }

    /// <summary>Ends the wait <paramref name="waiting"/> (its exact state) if it is still the current one.</summary>
    private bool TryEnd(long waiting, bool signalled, bool canceled)
    {
        if (Interlocked.CompareExchange(ref _state, waiting & ~PhaseMask, waiting) != waiting)
        {
            return false;
        }

        if (canceled)
        {
            _core.SetException(new OperationCanceledException(_registration.Token));
        }
        else
        {
            _core.SetResult(signalled);
        }

        return true;
    }

    private void Cancel()
    {
        var state = Interlocked.Read(ref _state);
        if ((state & PhaseMask) == Waiting)
        {
            TryEnd(state, signalled: false, canceled: true);
        }
    }

    /// <summary>The waiter's side, once its wait ended: no timer or registration outlives the wait.</summary>
    private void Release()
    {
        // Dispose waits for a cancellation callback that is running, so none can touch a later wait.
        _registration.Dispose();
        _registration = default;
        _timer?.Dispose();
        _timer = null;
    }

    private sealed class Expiry(AsyncSignal signal, long waiting)
    {
        private volatile bool _fired;

        public bool Fired => _fired;

        public void Fire()
        {
            _fired = true;
            signal.TryEnd(waiting, signalled: false, canceled: false);
        }
    }
}
