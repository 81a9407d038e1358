using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Isthmus.Core.Native;
using Isthmus.Core.Wire;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Isthmus.Node.Tests.Socks;

/// <summary>
/// Real sockets of another user (nobody, via setpriv): what the uid checks exist for. They need root to
/// change uid; elsewhere they return early (the AllowedUid tests still cover the refusal path).
/// </summary>
public sealed class OtherUserTests
{
    private const string Python = "/usr/bin/python3";
    private const string Setpriv = "/usr/bin/setpriv";
    private const int Nobody = 65534;

    private static bool CanRunAsNobody => Libc.GetUid() == 0 && File.Exists(Python) && File.Exists(Setpriv);

    [Fact]
    public async Task TcpClientOfAnotherUser_GetsNoAcceptableMethods()
    {
        Assert.True(CanRunAsNobody, "needs root (as ./test.sh runs), python3 and setpriv: run .ci/install-deps.sh");

        await using var harness = new SocksHarness();
        const string script = """
            import socket, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            s.sendall(bytes([5, 1, 0]))
            answer = b""
            while len(answer) < 2:
                chunk = s.recv(2 - len(answer))
                if not chunk:
                    break
                answer += chunk
            print(answer.hex())
            print("closed" if s.recv(16) == b"" else "open")
            """;
        using var process = StartAsNobody(script, harness.Server.LocalEndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var output = await process.StandardOutput.ReadToEndAsync(harness.Timeout.Token);
        await process.WaitForExitAsync(harness.Timeout.Token);

        Assert.Equal("05ff\nclosed\n", output);
        Assert.True(harness.Logger.Has(LogLevel.Warning, $"owned by uid {Nobody}"), harness.Logger.ToString());
    }

    [Fact]
    public async Task UdpDatagramFromAnotherUsersSocket_IsDropped_AndTheClientsIsRelayed()
    {
        Assert.True(CanRunAsNobody, "needs root (as ./test.sh runs), python3 and setpriv: run .ci/install-deps.sh");

        await using var harness = new SocksHarness();
        using var control = await harness.ClientAsync();
        var (_, relay) = await control.RequestAsync(0x03, MiniSocks5Client.IPv4("0.0.0.0"), 0);
        byte[] intruder = [0, 0, 0, .. MiniSocks5Client.IPv4("100.64.1.3"), 0, 53, .. "intruder"u8.ToArray()];
        // The intruder keeps its socket open (reads stdin) until we have seen the server judge its datagram.
        const string script = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.sendto(bytes.fromhex(sys.argv[1]), ("127.0.0.1", int(sys.argv[2])))
            print("sent", flush=True)
            sys.stdin.read()
            """;
        using var process = StartAsNobody(script, Convert.ToHexString(intruder), relay.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("sent", await process.StandardOutput.ReadLineAsync(harness.Timeout.Token));

        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        byte[] ours = [0, 0, 0, .. MiniSocks5Client.IPv4("100.64.1.3"), 0, 53, .. "ours"u8.ToArray()];
        await udp.SendToAsync(ours, SocketFlags.None, relay, harness.Timeout.Token);

        // One receive loop judges datagrams in arrival order, so the intruder's was judged before ours passed.
        var (_, destination, payload) = await harness.Overlay.NextDatagramAsync(harness.Timeout.Token);
        process.StandardInput.Close();
        await process.WaitForExitAsync(harness.Timeout.Token);
        Assert.Equal(new VirtualEndpoint(SocksHarness.PeerVip, 53), destination);
        Assert.Equal("ours"u8.ToArray(), payload);
        Assert.True(harness.Logger.Has(LogLevel.Warning, $"owned by uid {Nobody}"), harness.Logger.ToString());
    }

    private static Process StartAsNobody(string script, params string[] arguments)
    {
        var start = new ProcessStartInfo(Setpriv)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            WorkingDirectory = "/",
        };
        foreach (var argument in (string[])[$"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", Python, "-c", script, .. arguments])
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start)!;
    }
}
