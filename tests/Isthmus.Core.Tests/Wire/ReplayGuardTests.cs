using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Wire;

public sealed class ReplayGuardTests
{
    private sealed class ManualTime : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = DateTimeOffset.UnixEpoch.AddYears(56);

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void SameStreamId_IsAcceptedOnce()
    {
        var guard = new ReplayGuard(new ManualTime());
        var id = Guid.NewGuid();
        Assert.True(guard.TryAccept(id));
        Assert.False(guard.TryAccept(id));
        Assert.True(guard.TryAccept(Guid.NewGuid()));
    }

    [Fact]
    public void OldIds_ArePrunedAfterTwiceTheWindow_SoMemoryStaysBounded()
    {
        var time = new ManualTime();
        var guard = new ReplayGuard(time);
        var id = Guid.NewGuid();
        Assert.True(guard.TryAccept(id));
        time.Now += LegHeader.FreshnessWindow;
        Assert.False(guard.TryAccept(id));
        time.Now += LegHeader.FreshnessWindow * 2;
        Assert.True(guard.TryAccept(Guid.NewGuid())); // triggers pruning
        Assert.True(guard.TryAccept(id)); // forgotten; a header this old is refused as stale anyway
    }
}
