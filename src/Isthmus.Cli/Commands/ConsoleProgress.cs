using Isthmus.Personal;
using Spectre.Console;

namespace Isthmus.Cli.Commands;

/// <summary>
/// Progress of up/grow/shrink/down, one line per step and site: coloured through Spectre.Console on a
/// terminal, plain <c>SITE PART: TEXT</c> lines otherwise (logs, scripts, CI).
/// </summary>
internal sealed class ConsoleProgress : IClusterProgress
{
    private readonly Lock _lock = new();
    private readonly bool _terminal = !Console.IsOutputRedirected;

    public void Report(string site, string part, string text)
    {
        lock (_lock)
        {
            if (_terminal)
            {
                AnsiConsole.MarkupLine($"  [bold]{Markup.Escape(site),-8}[/] [blue]{Markup.Escape(part),-8}[/] {Markup.Escape(text)}");
            }
            else
            {
                Console.WriteLine($"{site} {part}: {text}");
            }
        }
    }

    public void Failed(string site, string reason)
    {
        lock (_lock)
        {
            if (_terminal)
            {
                AnsiConsole.MarkupLine($"  [bold]{Markup.Escape(site),-8}[/] [red]FAILED[/]   {Markup.Escape(reason)}");
            }
            else
            {
                Console.WriteLine($"{site} FAILED: {reason}");
            }
        }
    }
}
