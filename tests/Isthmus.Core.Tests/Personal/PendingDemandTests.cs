using Isthmus.Personal.Slurm;
using Xunit;

namespace Isthmus.Core.Tests.Personal;

public sealed class PendingDemandTests
{
    [Theory]
    [InlineData("Resources")]
    [InlineData("Priority")]
    [InlineData("None")]
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
    [InlineData("")]
    public void NodesCannotHelp(string reason) => Assert.False(PendingDemand.NewNodesCanHelp(reason));
}
