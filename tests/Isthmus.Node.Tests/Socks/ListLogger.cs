using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Isthmus.Node.Tests.Socks;

/// <summary>Keeps every log line, so tests can check that a refusal was explained.</summary>
internal sealed class ListLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue((logLevel, formatter(state, exception) + (exception is null ? "" : " " + exception)));

    public bool Has(LogLevel level, string fragment) => Lines.Any(l => l.Level == level && l.Message.Contains(fragment, StringComparison.Ordinal));

    public override string ToString() => string.Join("\n", Lines.Select(l => $"{l.Level}: {l.Message}"));
}
