using System.Globalization;
using System.Text.RegularExpressions;
using Isthmus.IntegrationTests.Topology;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Personal;

/// <summary>
/// Failures of one site while a personal cluster runs (local backend, one loopback-only namespace): the
/// failure is reported with the site and the reason, the other sites keep working, and <c>down</c> still
/// leaves nothing behind.
/// </summary>
public sealed partial class SiteFailureTests(ITestOutputHelper output) : LoopbackPersonalClusterTest(output, "isthmus-fail-")
{
    private static readonly TimeSpan Long = PersonalClusterCli.Patience;

    /// <summary>
    /// A site router killed with SIGKILL: site b's node keeps running jobs meanwhile, the manager reports the
    /// dead router and starts it again, a1 re-enrols with the same VIP, and jobs span both sites again.
    /// </summary>
    [Fact]
    public async Task SiteRouterKilled_OtherSiteWorks_ManagerRestartsIt_NodeRejoinsWithSameVip()
    {
        var file = Path.Combine(Work, "two.toml");
        await File.WriteAllTextAsync(file, """
            [cluster]
            name = "two"
            network = "100.64.0.0/16"

            [sites.a]

            [sites.b]

            """);
        var up = await Cli.RunAsync("up", file, "--wait", "150");
        Assert.True(up.ExitCode == 0, up.ToString());
        var before = await Cli.StatusAsync();
        var vipBefore = PersonalClusterCli.Proxies(before).Single(p => p.Node == "a1").Vip;
        var routerPid = RouterPid(before, "a");
        Assert.NotNull(routerPid);

        (await Host.RunAsync("/bin/kill", ["-KILL", routerPid.Value.ToString(CultureInfo.InvariantCulture)])).EnsureSuccess();
        var onB = await Cli.ShellAsync("srun -N1 -w b1 hostname");
        Assert.True(onB.ExitCode == 0, onB.ToString());
        Assert.Equal("b1", onB.StandardOutput.Trim());

        // The manager looks every 5 s: the router comes back with a new pid, the event says why.
        await Poll.AssertAsync(async () => RouterPid(await Cli.StatusAsync(), "a") is { } pid && pid != routerPid, Long, "the manager restarts router a", TimeSpan.FromSeconds(1));
        var events = (await Cli.StatusAsync()).GetProperty("events").EnumerateArray().Select(e => e.ToString()).ToList();
        Assert.Contains(events, e => e.Contains($"site a: router pid {routerPid} was gone; restarted", StringComparison.Ordinal));

        await Poll.AssertAsync(async () =>
        {
            var srun = await Cli.ShellAsync("srun -N2 hostname");
            return srun.ExitCode == 0 && PersonalClusterCli.Lines(srun.StandardOutput).Order(StringComparer.Ordinal).SequenceEqual(["a1", "b1"]);
        }, Long, "srun -N2 spans both sites again", TimeSpan.FromSeconds(2));
        Assert.Equal(vipBefore, PersonalClusterCli.Proxies(await Cli.StatusAsync()).Single(p => p.Node == "a1").Vip);

        await DownLeavesNothingAsync();
    }

    private static int? RouterPid(System.Text.Json.JsonElement status, string site)
    {
        var router = status.GetProperty("sites").EnumerateArray().Single(s => s.GetProperty("name").GetString() == site).GetProperty("router").GetString()!;
        var match = UpPid().Match(router);
        return match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    [GeneratedRegex(@"^up \(pid (\d+)\)$")]
    private static partial Regex UpPid();
}
