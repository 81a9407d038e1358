using System.Diagnostics;
using System.Globalization;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Overlay;

/// <summary>A cluster whose routers hold 1 MiB per stream in memory and spill to a spool directory beyond it.</summary>
public sealed class WanSpoolFixture : IAsyncLifetime
{
    private OverlayCluster? _cluster;

    public string SpoolDirectory { get; } = Directory.CreateTempSubdirectory("isthmus-it-spool-").FullName;

    public OverlayCluster Cluster => _cluster ?? throw new InvalidOperationException("cluster not started");

    public async Task InitializeAsync() => _cluster = await OverlayCluster.StartAsync(log: null, nodesPerSite: 1,
        routerArguments: [.. WanOutageFixture.RouterArguments, "--wan-stream-buffer", "1MiB", "--wan-spool", SpoolDirectory, "--wan-spool-limit", "512MiB"]).ConfigureAwait(false);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }

        Directory.Delete(SpoolDirectory, recursive: true);
    }
}

/// <summary>
/// With a spool, a program that keeps writing while the WAN is cut is not flow-controlled at the memory bound:
/// its writes go on into the router's spool file, and after the cut the receiver gets exactly those bytes.
/// </summary>
public sealed class WanSpoolTests(WanSpoolFixture fixture, ITestOutputHelper output) : IClassFixture<WanSpoolFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Cut = TimeSpan.FromSeconds(25);
    private OverlayCluster Cluster => fixture.Cluster;

    private static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Scripts", name);

    /// <summary>
    /// a1 connects to b1, the WAN of a is cut, then a1 writes 256 MiB: all of it is accepted before the cut ends,
    /// and after the cut b1 receives the same SHA-256; the spool directory holds no file name at any time. The
    /// size is beyond what the kernel can hold on the path (receive buffers autotune up to tcp_rmem's 32 MiB
    /// here: program → agent → router ≈ 2 × (4 + 32) MiB + the WAN socket's 4 MiB; 48 MiB fit without a spool
    /// once). Without <c>--wan-spool</c> this test fails: the program blocked after 15 MiB for the whole cut.
    /// </summary>
    [Fact]
    public Task ProgramWritesDuringCut_NotBlockedPastMemoryBound_ChecksumEqual() => Cluster.WithLogsOnFailureAsync(output, async () =>
    {
        const long total = 256L << 20;
        var topology = Cluster.Topology;
        var sink = Cluster.StartProgram("b1", "/usr/bin/python3", Script("wan_sink.py"), Cluster.Vips["b1"], "7620");
        HostProcess? source = null;
        try
        {
            await sink.WaitForLineAsync(l => l == "LISTENING", Short);
            source = Cluster.StartProgram("a1", "/usr/bin/python3", Script("wan_held_source.py"), Cluster.Vips["b1"], "7620", total.ToString(CultureInfo.InvariantCulture));
            await source.WaitForLineAsync(l => l == "CONNECTED", Short);

            await topology.CutWanAsync("a");
            var cut = Stopwatch.StartNew();
            source.WriteStdin("GO\n");
            var sentLine = await source.WaitForLineAsync(l => l.StartsWith("SENT ", StringComparison.Ordinal), Cut, OutputStream.StandardOutput);
            var acceptedAfter = cut.Elapsed;
            Assert.True(cut.Elapsed < Cut, "the WAN cut is over already");
            Assert.Empty(Directory.EnumerateFileSystemEntries(fixture.SpoolDirectory)); // unnamed files only
            await Task.Delay(Cut - cut.Elapsed);
            await topology.RestoreWanAsync("a");
            output.WriteLine($"{total >> 20} MiB accepted from the program {acceptedAfter.TotalSeconds:0.0} s into a {cut.Elapsed.TotalSeconds:0} s WAN cut (memory bound 1 MiB per stream)");

            Assert.Equal(0, await source.WaitForExitAsync(TimeSpan.FromSeconds(120)));
            var sha = sentLine.Split(' ')[1];
            Assert.Contains($"REPLY GOT {sha} {total}", source.StandardOutput, StringComparison.Ordinal);
            await sink.WaitForLineAsync(l => l == $"GOT {sha} {total}", Short);
            Assert.Contains(Cluster.Routers["a"].StandardErrorLines, l => l.Contains(" resumed after ", StringComparison.Ordinal));
        }
        finally
        {
            if (source is not null)
            {
                await source.StopAsync();
            }

            await sink.StopAsync();
            await topology.RestoreWanAsync("a");
        }
    });
}
