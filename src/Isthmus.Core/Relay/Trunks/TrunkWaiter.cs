using System.Threading.Tasks.Sources;

namespace Isthmus.Core.Relay.Trunks;

/// <summary>
/// A reusable wake-up for one waiter at a time (a stream's reader, a stream's writer, the trunk's writer
/// loop), so waiting allocates nothing. <see cref="Arm"/> and <see cref="Wake"/> are called under the
/// owner's lock; the waiter re-checks its state after every wake-up, so a spurious wake costs a loop.
/// Continuations run on the thread pool: the trunk's reader loop must never run a program's code inline.
/// </summary>
internal sealed class TrunkWaiter : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

    public bool Armed { get; private set; }

    public ValueTask Arm()
    {
        _core.Reset();
        Armed = true;
        return new ValueTask(this, _core.Version);
    }

    public void Wake()
    {
        if (Armed)
        {
            Armed = false;
            _core.SetResult(true);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
