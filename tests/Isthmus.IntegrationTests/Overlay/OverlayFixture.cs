using Xunit;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>One cluster (two sites, two nodes each) shared by the tests of a class: building it costs seconds.</summary>
public sealed class OverlayFixture : IAsyncLifetime
{
    private OverlayCluster? _cluster;

    public OverlayCluster Cluster => _cluster ?? throw new InvalidOperationException("cluster not started");

    public async Task InitializeAsync() => _cluster = await OverlayCluster.StartAsync(log: null).ConfigureAwait(false);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }
    }
}
