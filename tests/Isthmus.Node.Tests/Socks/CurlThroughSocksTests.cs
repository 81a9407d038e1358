using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Isthmus.Node.Tests.Socks;

/// <summary>curl, a client we did not write, through the server to an HTTP responder on a peer's image.</summary>
public sealed class CurlThroughSocksTests
{
    [Theory]
    [InlineData("--socks5-hostname", "b1")]
    [InlineData("--socks5-hostname", "b1.east.lab")]
    [InlineData("--socks5", "100.64.1.3")]
    public async Task CurlFetchesAPage(string option, string host)
    {
        Assert.True(File.Exists("/usr/bin/curl"), "curl is missing: run .ci/install-deps.sh");

        await using var harness = new SocksHarness();
        using var http = new TinyHttpResponder(SocksHarness.Image(SocksHarness.PeerVip), "hello from b1\n");

        var (exit, stdout, stderr) = await RunAsync("/usr/bin/curl", harness.Timeout.Token,
            "-sS", "--max-time", "30", option, harness.Server.LocalEndPoint.ToString(), $"http://{host}:{http.Port}/");

        Assert.True(exit == 0, $"curl exit {exit}: {stderr}\n{harness.Logger}");
        Assert.Equal("hello from b1\n", stdout);
    }

    [Fact]
    public async Task CurlReportsTheReplyCode_ForAnUnknownName()
    {
        Assert.True(File.Exists("/usr/bin/curl"), "curl is missing: run .ci/install-deps.sh");

        await using var harness = new SocksHarness();

        var (exit, _, stderr) = await RunAsync("/usr/bin/curl", harness.Timeout.Token,
            "-sS", "--max-time", "30", "--socks5-hostname", harness.Server.LocalEndPoint.ToString(), "http://nosuchnode:80/");

        Assert.Equal(97, exit); // CURLE_PROXY: the proxy answered with a failure
        Assert.Contains("SOCKS5 connection to nosuchnode", stderr, StringComparison.Ordinal);
        Assert.Contains("(4)", stderr, StringComparison.Ordinal); // curl 7.88 prints the REP code: host unreachable
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string program, CancellationToken cancellationToken, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // No proxy from the environment may redirect curl elsewhere.
        foreach (var variable in new[] { "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY" })
        {
            start.Environment.Remove(variable);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(); // only the curl we started
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Answers every request with one fixed body and closes, enough for curl.</summary>
    private sealed class TinyHttpResponder : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        public TinyHttpResponder(IPAddress address, string body)
        {
            _listener.Bind(new IPEndPoint(address, 0));
            _listener.Listen(4);
            _ = ServeAsync(Encoding.ASCII.GetBytes(body));
        }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        public void Dispose() => _listener.Dispose();

        private async Task ServeAsync(byte[] body)
        {
            while (true)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptAsync();
                }
                catch (Exception e) when (e is ObjectDisposedException or SocketException)
                {
                    return;
                }

                using (client)
                {
                    try
                    {
                        var request = new StringBuilder();
                        var buffer = new byte[4096];
                        while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && request.Length < 65536)
                        {
                            var n = await client.ReceiveAsync(buffer, SocketFlags.None);
                            if (n == 0)
                            {
                                break;
                            }

                            request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                        }

                        var head = $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
                        await client.SendAsync(Encoding.ASCII.GetBytes(head).Concat(body).ToArray(), SocketFlags.None);
                        client.Shutdown(SocketShutdown.Send);
                    }
                    catch (SocketException)
                    {
                    }
                }
            }
        }
    }
}
