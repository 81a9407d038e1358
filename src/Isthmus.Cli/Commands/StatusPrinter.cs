using Isthmus.Personal;
using Spectre.Console;

namespace Isthmus.Cli.Commands;

/// <summary><c>isthmus status</c> as tables: Spectre.Console on a terminal, plain aligned columns otherwise.</summary>
internal static class StatusPrinter
{
    public static void Print(ClusterStatus status)
    {
        var processes = string.Join(", ", status.Processes.Select(p => $"{p.Role} {(p.Alive ? "up" : "DOWN")} (pid {p.Pid})"));
        Console.WriteLine($"cluster {status.Name} ({status.StateDirectory}); manager {status.Manager}; login node {status.LoginVip}");
        Console.WriteLine($"submission host: {processes}");
        List<string[]> sites = [["SITE", "ACCESS", "SCHEDULER", "ROUTER", "WAN", "PROXIES (min-max)"]];
        sites.AddRange(status.Sites.Select(s => new[]
        {
            s.Name, s.Access, s.Scheduler, s.Error is null ? s.Router : "UNREACHABLE: " + s.Error, s.Wan ?? "", $"{s.Proxies.Count} ({s.Min}-{s.Max})",
        }));
        List<string[]> nodes = [["NODE", "SITE", "JOB", "STATE", "VIP", "SLURM"]];
        nodes.AddRange(status.Sites.SelectMany(s => s.Proxies.Select(p => new[] { p.Node, s.Name, p.JobId, p.State, p.Vip ?? "-", p.SlurmState ?? "-" })));
        Write(sites);
        Write(nodes);
        foreach (var e in status.Events.TakeLast(10))
        {
            Console.WriteLine("event: " + e);
        }
    }

    private static void Write(List<string[]> rows)
    {
        if (!Console.IsOutputRedirected)
        {
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var header in rows[0])
            {
                table.AddColumn(Markup.Escape(header));
            }

            foreach (var row in rows.Skip(1))
            {
                table.AddRow(row.Select(Markup.Escape).ToArray());
            }

            AnsiConsole.Write(table);
            return;
        }

        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var row in rows)
        {
            Console.WriteLine(string.Join("  ", row.Select((c, i) => i == row.Length - 1 ? c : c.PadRight(widths[i]))).TrimEnd());
        }
    }
}
