using System.CommandLine;
using System.Net;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Router;

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
        var logLevel = CommonOptions.LogLevelOption();
        var logFormat = CommonOptions.LogFormatOption();
        var command = new Command("router", "Run a site's router in the foreground until SIGINT/SIGTERM.") { dir, site, bindLan, bindWan, metrics, logLevel, logFormat };
        command.SetAction(async (result, _) =>
        {
            using var logging = CommonOptions.CreateLogging(result, logLevel, logFormat);
            var context = SiteRouter.LoadContext(result.GetValue(dir)!, result.GetValue(site)!, logging);
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

    private static IPEndPoint? Endpoint(string? text, string option) =>
        text is null ? null
        : HostPort.TryParse(text, out var hp) ? hp.ToIPEndPoint()
        : throw new UserException($"{option} '{text}' is not HOST:PORT");
}
