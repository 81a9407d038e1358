using Isthmus.Fuzz;
using Xunit;

namespace Isthmus.Core.Tests.Fuzz;

/// <summary>
/// The short, deterministic run of every fuzz target (bench/Isthmus.Fuzz runs them for minutes). The seed is
/// fixed, so a failure here replays exactly; the message has the shrunk input and the reason.
/// </summary>
public sealed class FuzzSmokeTests
{
    private const string Seed = "8YRMtFdHmxm1";
    private const int Iterations = 2000;

    public static TheoryData<string> Targets => [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Target_survives_a_seeded_run(string name)
    {
        var result = FuzzRunner.Run(FuzzTargets.Find(name), Iterations, seed: Seed);
        Assert.Null(result.Failure);
        Assert.Equal(Iterations, result.Executions);
    }

    [Fact]
    public void A_broken_invariant_is_reported_with_its_input()
    {
        var target = new FuzzTarget("always-throws", FuzzGen.Garbage(8), _ => throw new InvalidOperationException("boom"));
        var result = FuzzRunner.Run(target, 10, seed: Seed);
        Assert.NotNull(result.Failure);
        Assert.Contains("InvalidOperationException escaped the parser: boom", result.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Allocation_beyond_the_budget_is_a_failure()
    {
        var target = new FuzzTarget("allocates", FuzzGen.Garbage(8), _ => GC.KeepAlive(new byte[1 << 20]), _ => 1024);
        var result = FuzzRunner.Run(target, 10, seed: Seed);
        Assert.NotNull(result.Failure);
        Assert.Contains("allocated", result.Failure, StringComparison.Ordinal);
    }
}
