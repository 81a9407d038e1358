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
            var commandPath = string.Join(' ', parsed.CommandResult.Command.Parents.OfType<Command>().Reverse()
                .Select(c => c.Name).Append(parsed.CommandResult.Command.Name).Where(n => n.Length > 0));
            Console.Error.WriteLine($"isthmus: {parsed.Errors[0].Message} (try '{FixRootName(commandPath)} --help')");
            return ExitUsage;
        }

        try
        {
            return parsed.Invoke();
        }
        catch (UserException e)
        {
            Console.Error.WriteLine($"isthmus: {e.Message}");
            return e.ExitCode;
        }
    }

    private static string FixRootName(string path)
    {
        // RootCommand's name is the executable file name; show it as "isthmus".
        var parts = path.Split(' ', 2);
        return parts.Length == 1 ? "isthmus" : "isthmus " + parts[1];
    }
}
