using System.Net;
using Isthmus.Core.Addressing;
using Isthmus.Node.Socks;

namespace Isthmus.Node.Tests.Socks;

/// <summary>A running SOCKS5 server on 127.0.0.1:0 over a <see cref="LoopbackOverlay"/>, stopped on dispose.</summary>
internal sealed class SocksHarness : IAsyncDisposable
{
    public static readonly uint OwnVip = IPv4.Parse("100.64.1.2");
    public static readonly uint PeerVip = IPv4.Parse("100.64.1.3");
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    public SocksHarness(Socks5ServerOptions? options = null)
    {
        Overlay = new LoopbackOverlay(OwnVip);
        Overlay.AddName("b1", PeerVip);
        Overlay.AddName("b1.east.lab", PeerVip);
        Server = new Socks5Server(new IPEndPoint(IPAddress.Loopback, 0), Overlay, Logger, options);
        _running = Server.RunAsync(_stop.Token);
        // A guard against a hung test, not a threshold: every test finishes far sooner.
        Timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
    }

    public LoopbackOverlay Overlay { get; }

    public Socks5Server Server { get; }

    public ListLogger Logger { get; } = new();

    public CancellationTokenSource Timeout { get; }

    public static IPAddress Image(uint vip) => IPv4.ToIPAddress(LoopbackOverlay.Plan.ToImage(vip));

    public Task<MiniSocks5Client> ClientAsync() => MiniSocks5Client.ConnectAsync(Server.LocalEndPoint, Timeout.Token);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        Server.Dispose();
        await _running;
        Overlay.Dispose();
        _stop.Dispose();
        Timeout.Dispose();
    }
}
