using Isthmus.Core.Relay.Trunks;

namespace Isthmus.Router.Trunks;

/// <summary>
/// One trunk position towards a peer router: the live trunk, or the one dial in flight that every stream needing
/// it waits for (single flight: after an outage, a thousand resuming streams make one TCP + TLS handshake, not a
/// thousand). A failed dial fails all its waiters at once; the next stream to need the trunk dials again, and the
/// streams' own re-dial backoff spaces the attempts.
/// </summary>
internal sealed class TrunkSlot
{
    private readonly Lock _lock = new();
    private Task<(Trunk? Trunk, string Detail)>? _dialling;

    /// <summary>The trunk last dialled here (alive or not).</summary>
    public Trunk? Current { get; private set; }

    /// <summary>The live trunk, dialling one with <paramref name="dial"/> if there is none; null and why if that dial failed.</summary>
    public async Task<(Trunk? Trunk, string Detail)> GetAsync(Func<Task<(Trunk? Trunk, string Detail)>> dial, CancellationToken cancellationToken)
    {
        Task<(Trunk? Trunk, string Detail)> pending;
        lock (_lock)
        {
            if (Current is { IsAlive: true } live)
            {
                return (live, "");
            }

            // The dial takes no waiter's token: others may still want it when that one gives up (it has its own timeout).
            _dialling ??= DialOnceAsync(dial);
            pending = _dialling;
        }

        return await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<(Trunk? Trunk, string Detail)> DialOnceAsync(Func<Task<(Trunk? Trunk, string Detail)>> dial)
    {
        await Task.Yield(); // leave the lock before dialling
        (Trunk? Trunk, string Detail) result;
        try
        {
            result = await dial().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            result = (null, e.Message);
        }

        lock (_lock)
        {
            Current = result.Trunk ?? Current;
            _dialling = null;
        }

        return result;
    }
}
