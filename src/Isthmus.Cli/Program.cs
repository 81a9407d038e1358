using System.CommandLine;
using Isthmus.Cli;
using Isthmus.Cli.Commands;

var root = new RootCommand("Isthmus: personal clusters across HPC sites, one private network, unmodified programs.");
root.Subcommands.Add(ClusterCommands.Create());
root.Subcommands.Add(RouterCommand.Create());
root.Subcommands.Add(NodeCommand.Create());
root.Subcommands.Add(DomainCommands.Create());
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(ResolveCommand.Create());
root.Subcommands.Add(EnvCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
foreach (var command in PersonalClusterCommands.Create())
{
    root.Subcommands.Add(command);
}
root.Subcommands.Add(BenchCommand.Create());
return CommandLineHost.Run(root, args);
