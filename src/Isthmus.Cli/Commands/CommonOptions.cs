using System.CommandLine;
using System.Runtime.InteropServices;
using Isthmus.Core;
using Isthmus.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Isthmus.Cli.Commands;

/// <summary>Options and plumbing every long-running command shares: logging, and stopping on SIGINT/SIGTERM.</summary>
internal static class CommonOptions
{
    public static Option<LogLevel> LogLevelOption() => new("--log-level")
    {
        Description = "Least severe log level written to stderr (Trace, Debug, Information, Warning, Error).",
        DefaultValueFactory = _ => LogLevel.Information,
    };

    public static Option<string> LogFormatOption() => new("--log-format")
    {
        Description = "Log line format on stderr: 'text' or 'json' (one object per line).",
        DefaultValueFactory = _ => "text",
    };

    public static ILoggerFactory CreateLogging(ParseResult result, Option<LogLevel> level, Option<string> format)
    {
        var kind = result.GetValue(format);
        if (kind is not ("text" or "json"))
        {
            throw new UserException($"--log-format must be 'text' or 'json', not '{kind}'");
        }

        return IsthmusLogging.Create(result.GetValue(level), kind == "json");
    }

    /// <summary>A token cancelled by the first SIGINT or SIGTERM, so commands leave cleanly.</summary>
    public static CancellationTokenSource StopOnSignals(out IDisposable registrations) => StopOnSignals(out registrations, []);

    /// <summary>As <see cref="StopOnSignals(out IDisposable)"/>, and on each of <paramref name="more"/> too (raw numbers allowed).</summary>
    public static CancellationTokenSource StopOnSignals(out IDisposable registrations, params PosixSignal[] more)
    {
        var cts = new CancellationTokenSource();
        void Handler(PosixSignalContext context)
        {
            context.Cancel = true;
            cts.Cancel();
        }

        var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handler);
        var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handler);
        registrations = new CompositeDisposable([sigint, sigterm, .. more.Select(signal => PosixSignalRegistration.Create(signal, Handler))]);
        return cts;
    }

    private sealed class CompositeDisposable(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items)
            {
                item.Dispose();
            }
        }
    }
}
