using System.Diagnostics;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>Writes to the test's output (when given) with a time stamp; never throws once the test is over.</summary>
internal sealed class TopologyLog(ITestOutputHelper? output, string prefix)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Lock _lock = new();

    public void Write(string message)
    {
        if (output is null)
        {
            return;
        }

        lock (_lock)
        {
            try
            {
                output.WriteLine($"{_clock.Elapsed.TotalSeconds,7:0.000} {prefix} {message}");
            }
            catch (InvalidOperationException)
            {
                // the test has finished; xunit refuses late output
            }
        }
    }
}
