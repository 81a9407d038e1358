using System.CommandLine;
using System.Text.RegularExpressions;
using Isthmus.Interpose;

namespace Isthmus.Cli.Commands;

/// <summary>
/// <c>isthmus env --node NODE</c>: the environment <c>isthmus run</c> would add, as <c>export NAME=value</c>
/// lines, for launchers that start programs themselves: <c>eval "$(isthmus env --node a1)"</c> in a shell,
/// or a Slurm TaskProlog (whose "export NAME=value" lines Slurm adds to each task).
/// </summary>
internal static partial class EnvCommand
{
    public static Command Create()
    {
        var node = new Option<string>("--node") { Description = "The node (its agent runs on this host) whose VIP programs should use.", Required = true };
        var debug = new Option<bool>("--debug-shim") { Description = "The shim logs each decision to stderr." };
        var command = new Command("env", "Print the variables that make programs started by other launchers (a shell, a Slurm TaskProlog) programs of NODE, as 'export NAME=value' lines.")
        {
            node, debug,
        };
        command.SetAction(result =>
        {
            var agent = InterposedEnvironment.FindAgent(result.GetValue(node)!);
            var env = InterposedEnvironment.Build(agent, InterposedEnvironment.ShimPath(), result.GetValue(debug));
            foreach (var (name, value) in env.Where(e => e.Key == "LD_PRELOAD" || e.Key.StartsWith("ISTHMUS_", StringComparison.Ordinal)).OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                Console.WriteLine($"export {name}={Quote(value)}");
            }

            return 0;
        });
        return command;
    }

    /// <summary>Plain values stay bare (Slurm takes them literally); anything else is single-quoted for sh.</summary>
    private static string Quote(string value) =>
        PlainValue().IsMatch(value) ? value : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    [GeneratedRegex("^[A-Za-z0-9_./:,+=@%-]*$")]
    private static partial Regex PlainValue();
}
