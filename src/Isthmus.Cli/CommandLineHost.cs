using System.CommandLine;
using Isthmus.Core;

namespace Isthmus.Cli;

/// <summary>
/// Runs the command tree with Isthmus's error contract: bad input gives one line on stderr that says what
/// is wrong and what to do, and exit code 2; a failure while running gives one line and exit code 1.
/// </summary>
internal static class CommandLineHost
{
    public const int ExitUsage = 2;
    public const int ExitFailure = 1;

    public static int Run(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"isthmus: {parsed.Errors[0].Message} (try '{CommandPath(parsed.CommandResult)} --help')");
            return ExitUsage;
        }

        try
        {
            // Our own handler below prints UserException as one line; the library's would print a stack trace.
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UserException e)
        {
            Console.Error.WriteLine($"isthmus: {e.Message}");
            return e.ExitCode;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug or an unforeseen environment: still one readable line, the details only when asked for.
            Console.Error.WriteLine($"isthmus: unexpected error: {e.GetType().Name}: {e.Message} (set ISTHMUS_TRACE=1 for details)");
            if (Environment.GetEnvironmentVariable("ISTHMUS_TRACE") == "1")
            {
                Console.Error.WriteLine(e);
            }

            return ExitFailure;
        }
    }

    private static string CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new List<string>();
        for (System.CommandLine.Parsing.SymbolResult? r = result; r is not null; r = r.Parent)
        {
            if (r is System.CommandLine.Parsing.CommandResult c && c.Command is not RootCommand)
            {
                names.Add(c.Command.Name);
            }
        }

        names.Add("isthmus");
        names.Reverse();
        return string.Join(' ', names);
    }
}
