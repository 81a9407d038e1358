using System.CommandLine;
using System.Net;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Isthmus.Router;
using Microsoft.Extensions.Logging;

namespace Isthmus.Cli.Commands;

/// <summary><c>isthmus router DIR --site SITE</c>: runs a site's router in the foreground.</summary>
internal static class RouterCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Cluster directory (made by 'isthmus cluster new')." };
        var site = new Option<string>("--site") { Description = "The site whose router this is.", Required = true };
        var bindLan = new Option<string?>("--bind-lan") { Description = "HOST:PORT to listen on for nodes, if not the site's --lan address (e.g. 0.0.0.0:PORT behind NAT)." };
        var bindWan = new Option<string?>("--bind-wan") { Description = "HOST:PORT to listen on for peer routers, if not the site's --wan address." };
        var metrics = new Option<string?>("--metrics") { Description = "HOST:PORT to serve Prometheus metrics on (GET /metrics)." };
        var outageMax = new Option<string?>("--wan-outage-max") { Description = "End streams whose WAN leg stays down longer than this (default 10m; e.g. 90s, 1h)." };
        var deadAfter = new Option<string?>("--wan-dead-after") { Description = "Treat a WAN leg as broken after this long without any frame (default 5s; keepalives every 1s)." };
        var redialMax = new Option<string?>("--wan-redial-max") { Description = "Longest delay between re-dials of a broken WAN leg (first 100ms, doubling; default 2s)." };
        var streamBuffer = new Option<string?>("--wan-stream-buffer") { Description = "Unacknowledged bytes held per stream before the program is flow-controlled (default 8MiB)." };
        var budget = new Option<string?>("--wan-buffer-budget") { Description = "Unacknowledged bytes held by all streams together (default 512MiB)." };
        var spool = new Option<string?>("--wan-spool") { Description = "Directory for what programs send while a WAN leg is down, beyond the memory bound (off by default: it puts program bytes on this host's disk)." };
        var spoolLimit = new Option<string?>("--wan-spool-limit") { Description = "Unacknowledged bytes all streams together may hold in the --wan-spool directory before programs are flow-controlled (default 1GiB)." };
        var emulation = new Option<string?>("--wan-emulation")
        {
            Description = $"Emulate a WAN on this router's sends to other routers: \"{Isthmus.Core.Relay.Emulation.WanEmulationSpec.Syntax}\" (any subset; \"none\" "
                + "turns off the cluster file's wan_emulation). Delay adds to every one-way trip this router sends; loss drops datagrams only; "
                + "outage=DURATION@START[/EVERY] breaks and refuses all WAN connections, counted from the router's start.",
        };
        var trunks = new Option<int?>("--wan-trunks")
        {
            HelpName = "N",
            Description = "Long-lived connections (trunks) to each peer router that carry all stream legs this router opens (default 1; "
                + "0: one TCP + TLS connection per stream leg, a handshake per new stream).",
        };
        var logLevel = CommonOptions.LogLevelOption();
        var logFormat = CommonOptions.LogFormatOption();
        var command = new Command("router", "Run a site's router in the foreground until SIGINT/SIGTERM.")
        {
            dir, site, bindLan, bindWan, metrics, outageMax, deadAfter, redialMax, streamBuffer, budget, spool, spoolLimit, emulation, trunks, logLevel, logFormat,
        };
        command.SetAction(async (result, _) =>
        {
            var resume = ResumableOptions.Default;
            resume = Duration(result.GetValue(outageMax), "--wan-outage-max") is { } o ? resume with { OutageMax = o } : resume;
            resume = Duration(result.GetValue(deadAfter), "--wan-dead-after") is { } d ? resume with { DeadAfter = d, Keepalive = d < resume.Keepalive * 2 ? d / 3 : resume.Keepalive } : resume;
            resume = Duration(result.GetValue(redialMax), "--wan-redial-max") is { } r ? resume with { RedialMax = r } : resume;
            resume = Size(result.GetValue(streamBuffer), "--wan-stream-buffer") is { } sb ? resume with { StreamBuffer = (int)Math.Min(sb, int.MaxValue / 2) } : resume;
            resume = Size(result.GetValue(budget), "--wan-buffer-budget") is { } b ? resume with { BufferBudget = b } : resume;
            if (resume.Problem() is { } problem)
            {
                throw new UserException($"WAN leg settings: {problem}");
            }

            var limit = Size(result.GetValue(spoolLimit), "--wan-spool-limit");
            if (limit is not null && result.GetValue(spool) is null)
            {
                throw new UserException("--wan-spool-limit needs --wan-spool DIR");
            }

            if (limit is < StreamRelay.BufferSize)
            {
                throw new UserException($"--wan-spool-limit must be at least {StreamRelay.BufferSize / 1024} KiB (one read)");
            }

            var trunkCount = result.GetValue(trunks) ?? 1;
            if (trunkCount is < 0 or > 64)
            {
                throw new UserException($"--wan-trunks {trunkCount}: use 0 (no trunks) to 64");
            }

            var emulationFlag = result.GetValue(emulation) is { } text
                ? Isthmus.Core.Relay.Emulation.WanEmulationSpec.TryParse(text, out var parsed, out var emulationError) ? parsed
                : throw new UserException($"--wan-emulation '{text}': {emulationError} (syntax: {Isthmus.Core.Relay.Emulation.WanEmulationSpec.Syntax})")
                : null;

            using var logging = CommonOptions.CreateLogging(result, logLevel, logFormat);
            var context = SiteRouter.LoadContext(result.GetValue(dir)!, result.GetValue(site)!, logging);
            context.ResumeOptions = resume;
            context.TrunksPerSite = trunkCount;
            if (result.GetValue(spool) is { } spoolDir)
            {
                context.WanSpool = Spool.Open(spoolDir, limit ?? Spool.DefaultLimit, logging.CreateLogger("isthmus.router.spool"));
            }

            // The flag wins over the site's key, which wins over the cluster's.
            var spec = emulationFlag ?? context.Site.WanEmulation ?? context.Cluster.Cluster.WanEmulation;
            using var emulator = spec is null || spec.IsNone ? null : new Isthmus.Core.Relay.Emulation.WanEmulator(spec, logging.CreateLogger("isthmus.router.wan-emulator"));
            context.WanEmulator = emulator;
            if (emulator is not null)
            {
                logging.CreateLogger("isthmus.router").LogInformation("WAN emulator on: {Spec} (applied to what this router sends to other routers)", spec);
            }

            var lan = Endpoint(result.GetValue(bindLan), "--bind-lan") ?? context.Site.Lan.ToIPEndPoint();
            var wan = Endpoint(result.GetValue(bindWan), "--bind-wan") ?? context.Site.Wan.ToIPEndPoint();
            var metricsAt = Endpoint(result.GetValue(metrics), "--metrics");
            using var stop = CommonOptions.StopOnSignals(out var signals);
            using (signals)
            {
                await new SiteRouter(context, logging).RunAsync(lan, wan, metricsAt, ready: null, stop.Token).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    private static TimeSpan? Duration(string? text, string option) =>
        text is null ? null
        : QuantityText.TryParseDuration(text, out var value) && value > TimeSpan.Zero ? value
        : throw new UserException($"{option} '{text}' is not a duration (like 500ms, 5s, 10m)");

    private static long? Size(string? text, string option) =>
        text is null ? null
        : QuantityText.TryParseSize(text, out var value) && value > 0 ? value
        : throw new UserException($"{option} '{text}' is not a size (like 4MiB, 512MiB, 1GiB)");

    private static IPEndPoint? Endpoint(string? text, string option) =>
        text is null ? null
        : HostPort.TryParse(text, out var hp) ? hp.ToIPEndPoint()
        : throw new UserException($"{option} '{text}' is not HOST:PORT");
}
