using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Isthmus.Core.Logging;

/// <summary>
/// Logs go to stderr (stdout carries results that scripts parse, e.g. the node's "NODE VIP" line): one line
/// per event, or one JSON object per line with <c>--log-format json</c> for machines.
/// </summary>
public static class IsthmusLogging
{
    public static ILoggerFactory Create(LogLevel level, bool json = false) =>
        LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(level);
            builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            if (json)
            {
                builder.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ");
            }
            else
            {
                builder.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.TimestampFormat = "HH:mm:ss.fff ";
                    o.ColorBehavior = LoggerColorBehavior.Disabled;
                });
            }
        });
}
