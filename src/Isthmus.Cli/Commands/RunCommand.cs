using System.CommandLine;
using Isthmus.Core;
using Isthmus.Interpose;

namespace Isthmus.Cli.Commands;

/// <summary><c>isthmus run --node NODE -- CMD [ARGS...]</c>: runs an unmodified program as a program of NODE.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var node = new Option<string>("--node") { Description = "The node (its agent runs on this host) whose VIP the program uses.", Required = true };
        var mode = new Option<string>("--mode") { Description = "Interposition: 'preload' (dynamically linked programs).", DefaultValueFactory = _ => "preload" };
        var debug = new Option<bool>("--debug-shim") { Description = "The shim logs each decision to stderr." };
        var program = new Argument<string[]>("CMD") { Description = "The program and its arguments (put them after --).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("run", "Run CMD as a program of NODE: its sockets see NODE's VIP as their own and reach every other VIP. Exit code is CMD's.")
        {
            node, mode, debug, program,
        };
        command.SetAction(result =>
        {
            var chosen = result.GetValue(mode);
            if (chosen != "preload")
            {
                throw new UserException($"--mode '{chosen}' is not available; use 'preload'", ProgramLauncher.ExitCannotRun);
            }

            var argv = result.GetValue(program)!;
            var agent = InterposedEnvironment.FindAgent(result.GetValue(node)!);
            var env = InterposedEnvironment.Build(agent, InterposedEnvironment.ShimPath(), result.GetValue(debug));
            var path = ProgramLauncher.ResolveExecutable(argv[0], env.GetValueOrDefault("PATH"))
                ?? throw new UserException($"{argv[0]}: command not found", ProgramLauncher.ExitNotFound);
            Console.Out.Flush();
            return ProgramLauncher.Exec(path, argv, env);
        });
        return command;
    }
}
