using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Isthmus.Core;
using Isthmus.Interpose;
using Isthmus.Personal;
using Isthmus.Personal.Proxy;
using Isthmus.Personal.Spec;
using Isthmus.Personal.State;
using Microsoft.Extensions.Logging;

namespace Isthmus.Cli.Commands;

/// <summary>
/// The personal-cluster commands: <c>up FILE.toml</c>, <c>status</c>, <c>shell</c>, <c>grow SITE N</c>,
/// <c>shrink SITE N</c>, <c>down</c>; and the two that Isthmus itself starts, <c>proxy</c> (a job proxy's body)
/// and <c>manage</c> (the elastic manager).
/// </summary>
internal static class PersonalClusterCommands
{
    public static IEnumerable<Command> Create() => [Up(), Status(), Shell(), Grow(), Shrink(), Down(), ProxyCommand(), Manage()];

    private static Option<string?> StateOption() => new("--state")
    {
        HelpName = "DIR",
        Description = $"The cluster's state directory (default: $ISTHMUS_STATE, else the only cluster under {StateDirectory.DefaultRoot()}).",
    };

    private static Command Up()
    {
        var file = new Argument<string>("FILE") { Description = "The personal-cluster file (TOML): [cluster], [submit], [manager], [sites.NAME]; see README.md." };
        var state = StateOption();
        state.Description = $"Where to keep the cluster's state (default: {StateDirectory.DefaultRoot()}/NAME).";
        var wait = new Option<int>("--wait")
        {
            HelpName = "SECONDS",
            Description = "How long to wait for the proxies' nodes to join; queued proxies keep coming after that.",
            DefaultValueFactory = _ => 300,
        };
        var command = new Command("up", "Bring up a personal cluster: routers, the personal Slurm, and job proxies at every site; returns when the nodes have joined.")
        {
            file, state, wait,
        };
        command.SetAction(async (result, ct) =>
        {
            var spec = PersonalClusterFileReader.Load(result.GetValue(file)!);
            var dir = new StateDirectory(result.GetValue(state) ?? Path.Combine(StateDirectory.DefaultRoot(), spec.Name));
            var seconds = result.GetValue(wait);
            if (seconds < 0)
            {
                throw new UserException("--wait must be 0 or more seconds");
            }

            var progress = new ConsoleProgress();
            progress.Report(PersonalClusterSpec.HomeSite, "state", dir.Path);
            var (cluster, complete) = await PersonalCluster.UpAsync(spec, dir, progress, TimeSpan.FromSeconds(seconds), ct).ConfigureAwait(false);
            var status = await ClusterStatusReader.ReadAsync(cluster.Reload(), ct).ConfigureAwait(false);
            var nodes = status.Sites.Sum(s => s.Proxies.Count(p => p.Vip is not null));
            var failed = cluster.Reload().Record.Sites.Where(s => s.Failed is not null).Select(s => s.Name).ToList();
            Console.WriteLine(complete
                ? $"personal cluster '{spec.Name}' is up: {nodes} nodes. Next: isthmus shell -c 'sinfo'; isthmus status; isthmus down"
                : failed.Count > 0
                    ? $"personal cluster '{spec.Name}' is up with {nodes} nodes, without site {string.Join(", ", failed)} (it did not come up; reason above and in 'isthmus status'); 'isthmus down' cleans up as usual"
                    : $"personal cluster '{spec.Name}' is up with {nodes} nodes, but not all proxies joined within {seconds} s: see 'isthmus status'");
            return complete ? 0 : 1;
        });
        return command;
    }

    private static Command Status()
    {
        var state = StateOption();
        var json = new Option<bool>("--json") { Description = "Print the status as one JSON object." };
        var command = new Command("status", "Show the personal cluster: sites, routers, job proxies (site job ids, state), nodes (name, VIP, Slurm state).") { state, json };
        command.SetAction(async (result, ct) =>
        {
            var cluster = PersonalCluster.Open(StateDirectory.Find(result.GetValue(state)));
            var status = await ClusterStatusReader.ReadAsync(cluster, ct).ConfigureAwait(false);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(status, ClusterStatusJsonContext.Default.ClusterStatus));
                return 0;
            }

            StatusPrinter.Print(status);
            return 0;
        });
        return command;
    }

    private static Command Shell()
    {
        var state = StateOption();
        var run = new Option<string?>("-c") { HelpName = "COMMAND", Description = "Run COMMAND with sh instead of an interactive shell, e.g. -c 'srun -N2 hostname'." };
        var command = new Command("shell", "A shell on the login node of the personal cluster: sbatch, srun, squeue and sinfo talk to the personal Slurm, programs are interposed.")
        {
            state, run,
        };
        command.SetAction(async (result, ct) =>
        {
            var cluster = PersonalCluster.Open(StateDirectory.Find(result.GetValue(state)));
            Environment.SetEnvironmentVariable("ISTHMUS_RUNTIME_DIR", cluster.State.RuntimeDirectory);
            var agent = InterposedEnvironment.FindAgent(PersonalClusterSpec.LoginNode);
            var env = InterposedEnvironment.Build(agent, InterposedEnvironment.ShimPath(), debug: false);
            foreach (var (k, v) in cluster.Slurm.ClientEnvironment())
            {
                env[k] = v;
            }

            env["ISTHMUS_STATE"] = cluster.State.Path;
            env["PATH"] = Path.GetDirectoryName(cluster.Isthmus) + ":" + env.GetValueOrDefault("PATH", "/usr/bin:/bin");
            var command = result.GetValue(run);
            var info = command is null
                ? new ProcessStartInfo(env.GetValueOrDefault("SHELL") is { Length: > 0 } sh ? sh : "/bin/sh")
                : new ProcessStartInfo("/bin/sh") { ArgumentList = { "-c", command } };
            info.UseShellExecute = false;
            info.Environment.Clear();
            foreach (var (k, v) in env)
            {
                info.Environment[k] = v;
            }

            if (command is null)
            {
                Console.Error.WriteLine($"isthmus: a shell on '{PersonalClusterSpec.LoginNode}' ({agent.Vip}) of '{cluster.Spec.Name}'; 'exit' to leave");
            }

            using var process = Process.Start(info) ?? throw new UserException("cannot start a shell", 1);
            // The child gets the terminal's signals itself; we only wait (Ctrl-C must not end isthmus first).
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            return process.ExitCode;
        });
        return command;
    }

    private static (Argument<string> Site, Argument<int> Count) SiteCount(string verb) =>
        (new Argument<string>("SITE") { Description = "The site (a [sites.NAME] of the cluster file)." },
         new Argument<int>("N") { Description = $"How many proxies to {verb}." });

    private static Command Grow()
    {
        var (site, count) = SiteCount("submit");
        var state = StateOption();
        var wait = new Option<int>("--wait") { HelpName = "SECONDS", Description = "Wait this long for the new nodes to join (0: return after submitting).", DefaultValueFactory = _ => 300 };
        var command = new Command("grow", "Submit N more job proxies at SITE; each becomes a personal node.") { site, count, state, wait };
        command.SetAction(async (result, ct) =>
        {
            var n = result.GetValue(count);
            if (n < 1)
            {
                throw new UserException("N must be 1 or more");
            }

            var cluster = PersonalCluster.Open(StateDirectory.Find(result.GetValue(state)));
            var progress = new ConsoleProgress();
            var before = cluster.Record.Proxies.Select(p => p.Node).ToList();
            await cluster.GrowAsync(result.GetValue(site)!, n, progress, ct).ConfigureAwait(false);
            var seconds = result.GetValue(wait);
            return seconds <= 0 || await cluster.WaitForNodesAsync(progress, TimeSpan.FromSeconds(seconds), ct, before).ConfigureAwait(false) ? 0 : 1;
        });
        return command;
    }

    private static Command Shrink()
    {
        var (site, count) = SiteCount("release");
        var state = StateOption();
        var command = new Command("shrink", "Release N job proxies at SITE (idle nodes first): drain, requeue running personal jobs, cancel, remove.") { site, count, state };
        command.SetAction(async (result, ct) =>
        {
            var n = result.GetValue(count);
            if (n < 1)
            {
                throw new UserException("N must be 1 or more");
            }

            var cluster = PersonalCluster.Open(StateDirectory.Find(result.GetValue(state)));
            foreach (var note in await cluster.ShrinkAsync(result.GetValue(site)!, n, new ConsoleProgress(), ct).ConfigureAwait(false))
            {
                Console.WriteLine(note);
            }

            return 0;
        });
        return command;
    }

    private static Command Down()
    {
        var state = StateOption();
        var keep = new Option<bool>("--keep-install") { Description = "Keep the copy of Isthmus at remote sites (WORK/bin), so the next up does not copy it again." };
        var command = new Command("down", "Cancel every job proxy, stop the personal Slurm and every router, and remove the cluster's files here and at the sites.") { state, keep };
        command.SetAction(async (result, ct) =>
        {
            var cluster = PersonalCluster.Open(StateDirectory.Find(result.GetValue(state)));
            var notes = await cluster.DownAsync(new ConsoleProgress(), ct, result.GetValue(keep)).ConfigureAwait(false);
            foreach (var note in notes)
            {
                Console.WriteLine(note);
            }

            var failed = notes.Any(n => n.StartsWith("kept ", StringComparison.Ordinal));
            Console.WriteLine(failed ? $"personal cluster '{cluster.Spec.Name}' is NOT fully down" : $"personal cluster '{cluster.Spec.Name}' is down; nothing left behind");
            return failed ? 1 : 0;
        });
        return command;
    }

    // Linux's numbers (x86-64 and arm64); PosixSignal names only the portable signals.
    private const PosixSignal SignalUsr1 = (PosixSignal)10;
    private const PosixSignal SignalUsr2 = (PosixSignal)12;

    private static Command ProxyCommand()
    {
        var work = new Argument<string>("WORK") { Description = "The site's work directory (holds proxy.json)." };
        var name = new Option<string>("--name") { Description = "The personal node this proxy becomes.", Required = true };
        var logLevel = CommonOptions.LogLevelOption();
        var logFormat = CommonOptions.LogFormatOption();
        var command = new Command("proxy", "Run a job proxy (started by 'isthmus up' through a site's scheduler): enrol NODE, run the personal slurmd, leave cleanly on SIGTERM.")
        {
            work, name, logLevel, logFormat,
        };
        command.SetAction(async (result, _) =>
        {
            using var logging = CommonOptions.CreateLogging(result, logLevel, logFormat);
            var node = result.GetValue(name)!;
            // Grid Engine warns with SIGUSR1/SIGUSR2 before it kills (qdel with -notify, soft walltime, suspend),
            // and may send them to the whole job: each is a request to drain and leave, like SIGTERM.
            using var stop = CommonOptions.StopOnSignals(out var signals, SignalUsr1, SignalUsr2);
            using (signals)
            {
                return await new JobProxy(Path.GetFullPath(result.GetValue(work)!), node, logging).RunAsync(vip =>
                {
                    Console.Out.WriteLine($"{node} {vip}");
                    Console.Out.Flush();
                }, stop.Token).ConfigureAwait(false);
            }
        });
        return command;
    }

    private static Command Manage()
    {
        var state = StateOption();
        var interval = new Option<int>("--interval") { HelpName = "SECONDS", Description = "Seconds between two looks at the sites and the personal queue.", DefaultValueFactory = _ => 5 };
        var command = new Command("manage", "The elastic manager (started by 'isthmus up'): removes nodes whose proxies ended, keeps min proxies per site, grows for pending jobs up to max, releases idle nodes.")
        {
            state, interval,
        };
        command.SetAction(async (result, _) =>
        {
            var dir = StateDirectory.Find(result.GetValue(state));
            var every = TimeSpan.FromSeconds(Math.Max(1, result.GetValue(interval)));
            using var logging = Core.Logging.IsthmusLogging.Create(LogLevel.Information, json: false);
            var log = logging.CreateLogger("manage");
            var progress = new LogProgress(log);
            using var stop = CommonOptions.StopOnSignals(out var signals);
            using (signals)
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        if (!dir.Exists)
                        {
                            return 0;
                        }

                        await PersonalCluster.Open(dir).ReconcileAsync(progress, stop.Token).ConfigureAwait(false);
                    }
                    catch (UserException e)
                    {
                        log.LogWarning("reconcile: {Message}", e.Message);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }

                    try
                    {
                        await Task.Delay(every, stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }

            return 0;
        });
        return command;
    }

    private sealed class LogProgress(ILogger log) : IClusterProgress
    {
        public void Report(string site, string part, string text) => log.LogInformation("{Site} {Part}: {Text}", site, part, text);

        public void Failed(string site, string reason) => log.LogWarning("{Site} FAILED: {Reason}", site, reason);
    }
}
