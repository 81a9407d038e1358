using Xunit;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>A cluster of its own for one test class: two sites of one node each, routers started with <paramref name="routerArguments"/>.</summary>
public abstract class SmallClusterFixture(IReadOnlyList<string> routerArguments) : IAsyncLifetime
{
    private OverlayCluster? _cluster;

    public OverlayCluster Cluster => _cluster ?? throw new InvalidOperationException("cluster not started");

    public async Task InitializeAsync() => _cluster = await OverlayCluster.StartAsync(log: null, nodesPerSite: 1, routerArguments: routerArguments).ConfigureAwait(false);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }
    }
}
