using System.CommandLine;
using Isthmus.Core;
using Isthmus.Interpose;
using Isthmus.Interpose.Seccomp;

namespace Isthmus.Cli.Commands;

/// <summary><c>isthmus run --node NODE [--mode auto|preload|seccomp] (default auto) -- CMD [ARGS...]</c>: runs an unmodified program as a program of NODE.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var node = new Option<string>("--node") { Description = "The node (its agent runs on this host) whose VIP the program uses.", Required = true };
        var mode = new Option<string>("--mode")
        {
            Description = "Interposition: 'auto' (the default: seccomp for statically linked ELF programs, i.e. without PT_INTERP, and for Go programs, "
                + "which make their system calls themselves; preload otherwise; setuid/setgid programs are refused), "
                + "'preload' (LD_PRELOAD shim, dynamically linked programs that call libc; isthmus execs the program), "
                + "'seccomp' (seccomp user-notification supervisor, any native 64-bit program incl. static ones; isthmus stays as its parent, Linux >= 5.14).",
            DefaultValueFactory = _ => "auto",
        };
        mode.AcceptOnlyFromAmong("auto", "preload", "seccomp");
        var messages = new Option<bool>("--seccomp-msg")
        {
            Description = "seccomp mode: also stop sendmsg/sendmmsg/recvmsg/recvmmsg, so UDP through them sees VIPs (costs a supervisor round trip per call, TCP data sent with sendmsg included).",
        };
        var debug = new Option<bool>("--debug-shim") { Description = "The shim (or the seccomp supervisor) logs each decision to stderr." };
        var program = new Argument<string[]>("CMD") { Description = "The program and its arguments (put them after --).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("run", "Run CMD as a program of NODE: its sockets see NODE's VIP as their own and reach every other VIP. Exit code is CMD's.")
        {
            node, mode, messages, debug, program,
        };
        command.SetAction(result =>
        {
            var argv = result.GetValue(program)!;
            var agent = InterposedEnvironment.FindAgent(result.GetValue(node)!);
            var path = ProgramLauncher.ResolveExecutable(argv[0], Environment.GetEnvironmentVariable("PATH"))
                ?? throw new UserException($"{argv[0]}: command not found", ProgramLauncher.ExitNotFound);
            var kind = ProgramKind.Inspect(path);
            var chosen = result.GetValue(mode) switch
            {
                "auto" => kind.ChooseAuto(path),
                "seccomp" => InterposeMode.Seccomp,
                _ => InterposeMode.Preload,
            };
            Console.Out.Flush();
            if (chosen == InterposeMode.Seccomp)
            {
                kind.EnsureSeccompCan(path);
                var env = InterposedEnvironment.Build(agent, shimPath: null, result.GetValue(debug));
                return SeccompSupervisor.Run(agent, path, argv, env, result.GetValue(debug), result.GetValue(messages));
            }

            var preloadEnv = InterposedEnvironment.Build(agent, InterposedEnvironment.ShimPath(), result.GetValue(debug));
            return ProgramLauncher.Exec(path, argv, preloadEnv);
        });
        return command;
    }
}
