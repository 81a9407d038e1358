using Isthmus.IntegrationTests.Overlay;
using Isthmus.IntegrationTests.Topology;
using Xunit;

namespace Isthmus.IntegrationTests.Hpc;

/// <summary>
/// What the HPC tests of one class run on, built on first use: an Isthmus cluster (two sites, one node each)
/// whose cluster file sets <c>node_hostname = true</c>, and a plain one-site topology without Isthmus for the
/// native baselines (the same setup between two nodes of one LAN, so a failure across the overlay is the
/// overlay's, not the setup's). A failure to build one is rethrown to every test that asks for it.
/// </summary>
public sealed class HpcFixture : IAsyncLifetime
{
    /// <summary>The <c>[cluster]</c> keys the HPC tests need: programs see their node name as host name.</summary>
    public static readonly IReadOnlyDictionary<string, string> ClusterSettings = new Dictionary<string, string> { ["node_hostname"] = "true" };

    private readonly Lock _lock = new();
    private Task<OverlayCluster>? _cluster;
    private Task<SiteTopology>? _native;

    public async Task<HpcNodes> OverlayAsync()
    {
        lock (_lock)
        {
            _cluster ??= OverlayCluster.StartAsync(log: null, nodesPerSite: 1, clusterSettings: ClusterSettings);
        }

        return HpcNodes.Overlay(await _cluster.ConfigureAwait(false));
    }

    public async Task<HpcNodes> NativeAsync()
    {
        lock (_lock)
        {
            _native ??= SiteTopology.CreateAsync(TopologySpec.Uniform(1, 2));
        }

        return HpcNodes.Native(await _native.ConfigureAwait(false));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_cluster is { IsCompletedSuccessfully: true })
        {
            await _cluster.Result.DisposeAsync().ConfigureAwait(false);
        }

        if (_native is { IsCompletedSuccessfully: true })
        {
            await _native.Result.DisposeAsync().ConfigureAwait(false);
        }
    }
}
