using Isthmus.Core.Logging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Isthmus.Core.Tests.Logging;

public sealed class RateLimitedLogTests
{
    [Fact]
    public void At_most_the_limit_a_second_then_the_count_of_what_was_suppressed()
    {
        var time = new FakeTimeProvider();
        var lines = new CapturingLogger();
        var log = new RateLimitedLog(lines, linesPerSecond: 20, time);
        for (var i = 0; i < 1000; i++)
        {
            log.Warning("Refused {Number}", i);
        }

        Assert.Equal(20, lines.Lines.Count);
        Assert.Equal("Refused 19", lines.Lines[^1]);
        Assert.Equal(980, log.TotalSuppressed);

        time.Advance(TimeSpan.FromSeconds(1));
        log.Warning("Refused {Number}", 1000);
        Assert.Equal(["980 similar lines suppressed (at most 20 a second)", "Refused 1000"], lines.Lines[^2..]);
    }

    private sealed class CapturingLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
