namespace Isthmus.Core.Relay.Resumable;

/// <summary>
/// An auto-reset wake-up for one waiter. Setters change state first and then call <see cref="Set"/>; the
/// waiter re-checks all state after every wake-up, so a coalesced signal loses nothing.
/// </summary>
internal sealed class AsyncSignal : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(0, 1);
    private int _pending;

    public void Set()
    {
        if (Interlocked.CompareExchange(ref _pending, 1, 0) == 0)
        {
            _semaphore.Release();
        }
    }

    /// <summary>True if signalled, false on timeout.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var signalled = await _semaphore.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        if (signalled)
        {
            Volatile.Write(ref _pending, 0);
        }

        return signalled;
    }

    public void Dispose() => _semaphore.Dispose();
}
