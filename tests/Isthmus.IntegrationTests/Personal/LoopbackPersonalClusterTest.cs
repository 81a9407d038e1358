using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Personal;

/// <summary>
/// What the personal-cluster tests on the local backend share: one loopback-only namespace of the topology
/// fixture (no default route) as the user's machine, a private work directory, the CLI driver, and a
/// teardown that takes a cluster a failed test left up down before the namespace goes.
/// </summary>
public abstract class LoopbackPersonalClusterTest(ITestOutputHelper output, string prefix) : IAsyncLifetime
{
    private SiteTopology? _topology;
    private PersonalClusterCli? _cli;

    protected ITestOutputHelper Output => output;

    protected string Work { get; private set; } = "";

    protected NetHost Host => _topology!.SiteList[0].Nodes[0];

    protected PersonalClusterCli Cli => _cli!;

    /// <summary>Variables every isthmus command of the test gets (a site scheduler's settings).</summary>
    protected virtual IReadOnlyDictionary<string, string?>? Environment => null;

    public async Task InitializeAsync()
    {
        _topology = await SiteTopology.CreateAsync(TopologySpec.Uniform(1, 1));
        Work = Directory.CreateTempSubdirectory(prefix).FullName;
        _cli = new PersonalClusterCli(Host, Path.Combine(Work, "state"), Environment);
        try
        {
            await StartSiteServicesAsync();
        }
        catch
        {
            // xunit does not dispose a class whose InitializeAsync failed.
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_topology is not null)
        {
            if (_cli is { IsUp: true })
            {
                output.WriteLine((await Cli.RunAsync("down")).ToString());
            }

            await StopSiteServicesAsync();
            await _topology.DisposeAsync();
            _topology = null;
        }

        try
        {
            Directory.Delete(Work, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>Starts what the test's sites need besides Isthmus (e.g. a Grid Engine); nothing by default.</summary>
    protected virtual Task StartSiteServicesAsync() => Task.CompletedTask;

    /// <summary>Stops what <see cref="StartSiteServicesAsync"/> started, after the cluster is down.</summary>
    protected virtual Task StopSiteServicesAsync() => Task.CompletedTask;

    /// <summary>
    /// down must succeed and leave nothing: no process it recorded, no process naming the state directory.
    /// </summary>
    protected async Task DownLeavesNothingAsync()
    {
        var pids = PersonalClusterCli.RecordedPids(await Cli.StatusAsync());
        var down = await Cli.RunAsync("down");
        output.WriteLine(down.ToString());
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Contains("nothing left behind", down.StandardOutput, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Cli.State), "the state directory is removed");
        Assert.DoesNotContain(pids, PersonalClusterCli.Running);
        Assert.Empty(PersonalClusterCli.ProcessesMentioning(Cli.State));
    }
}
