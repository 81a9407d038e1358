using Isthmus.Personal.Slurm;
using Xunit;

namespace Isthmus.Core.Tests.Personal;

public sealed class PendingDemandTests
{
    [Theory]
    [InlineData("Resources")]
    [InlineData("Priority")]
    [InlineData("PartitionNodeLimit")]
    [InlineData("PartitionConfig")]
    [InlineData("NodeDown")]
    [InlineData("(Resources)")]
    public void NodesCanHelp(string reason) => Assert.True(PendingDemand.NewNodesCanHelp(reason));

    [Theory]
    [InlineData("ReqNodeNotAvail, UnavailableNodes:a2")]
    [InlineData("ReqNodeNotAvail")]
    [InlineData("BeginTime")]
    [InlineData("Dependency")]
    [InlineData("DependencyNeverSatisfied")]
    [InlineData("JobHeldUser")]
    [InlineData("JobHeldAdmin")]
    [InlineData("BadConstraints")]
    [InlineData("None")] // not looked at by the scheduler yet: it may well start on idle nodes a moment later
    [InlineData("")]
    public void NodesCannotHelp(string reason) => Assert.False(PendingDemand.NewNodesCanHelp(reason));

    [Theory]
    [InlineData("7|PENDING||(null)|Resources", true)]
    [InlineData("7|PENDING|||None", false)]
    [InlineData("7|PENDING||a2|None", false)]
    [InlineData("7|PENDING||a[2-3]|Resources", false)]
    [InlineData("7|RUNNING|a1||None", false)]
    [InlineData("7|PENDING|||ReqNodeNotAvail, UnavailableNodes:a2", false)]
    public void SqueueLine_IsDemand(string line, bool demand)
    {
        var job = PersonalJob.Parse(line);
        Assert.NotNull(job);
        Assert.Equal("7", job.Value.Id);
        Assert.Equal(demand, PendingDemand.IsDemand(job.Value));
    }

    [Fact]
    public void SqueueLine_ReasonWithBarsAndSpaces_KeptWhole()
    {
        var job = PersonalJob.Parse("12|PENDING||(null)|ReqNodeNotAvail, UnavailableNodes:a|b")!.Value;
        Assert.Equal(new PersonalJob("12", "PENDING", "", "", "ReqNodeNotAvail, UnavailableNodes:a|b"), job);
        Assert.Null(PersonalJob.Parse("garbage"));
    }
}
