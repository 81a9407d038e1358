using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;

namespace Isthmus.IntegrationTests.Hpc;

/// <summary>
/// memcached with its UDP port enabled on one node and clients on another: a small Python client (memcached's
/// UDP protocol has an 8-byte frame header per datagram, and answers longer than one datagram come in
/// several), libmemcached's <c>memccp --udp</c> (a connected UDP socket and sendmsg) and <c>memcslap</c>
/// over TCP. Across sites on the overlay (a1 → b1), and natively within one LAN as the baseline.
/// </summary>
public sealed partial class MemcachedTests(HpcFixture fixture, ITestOutputHelper output) : IClassFixture<HpcFixture>
{
    private const int Port = 11311;
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(120);
    private static readonly string[] SlapTests = ["set", "get"];

    // TCP set + UDP get of a value whose answer needs several datagrams, then UDP set + TCP get.
    // Prints "UDP-FROM ip port" for every UDP answer and "OK" when every value came back equal.
    private const string ClientCode = """
        import random, socket, string, struct, sys
        host, port = sys.argv[1], int(sys.argv[2])

        def tcp(request, end):
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(request)
                answer = b""
                while not answer.endswith(end):
                    data = s.recv(65536)
                    if not data:
                        break
                    answer += data
                return answer

        def udp(request):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(2)
            for attempt in range(5):
                rid = random.randrange(65536)
                u.sendto(struct.pack("!HHHH", rid, 0, 1, 0) + request, (host, port))
                parts, total = {}, None
                try:
                    while total is None or len(parts) < total:
                        data, source = u.recvfrom(65535)
                        r, seq, total, _ = struct.unpack("!HHHH", data[:8])
                        if r == rid:
                            parts[seq] = data[8:]
                            print("UDP-FROM", source[0], source[1], flush=True)
                except socket.timeout:
                    print("UDP-RETRY", attempt, flush=True)
                    continue
                print("UDP-ANSWER", total, "datagrams", flush=True)
                return b"".join(parts[i] for i in range(total))
            sys.exit("no complete UDP answer in 5 attempts")

        def value(n):
            return "".join(random.choice(string.ascii_letters) for _ in range(n)).encode()

        big = value(5000)
        assert tcp(b"set isthmus:tcp 0 0 %d\r\n%s\r\n" % (len(big), big), b"\r\n") == b"STORED\r\n"
        got = udp(b"get isthmus:tcp\r\n")
        assert got == b"VALUE isthmus:tcp 0 %d\r\n%s\r\nEND\r\n" % (len(big), big), got[:200]
        small = value(1000)
        assert udp(b"set isthmus:udp 0 0 %d\r\n%s\r\n" % (len(small), small)) == b"STORED\r\n"
        got = tcp(b"get isthmus:udp\r\n", b"END\r\n")
        assert got == b"VALUE isthmus:udp 0 %d\r\n%s\r\nEND\r\n" % (len(small), small), got[:200]
        print("OK", flush=True)
        """;

    [Fact]
    public async Task Memcached_UdpAndTcp_AcrossSites() => await RunAsync(await fixture.OverlayAsync(), "a1", "b1");

    [Fact]
    public async Task Memcached_UdpAndTcp_NativeBaseline() => await RunAsync(await fixture.NativeAsync(), "a1", "a2");

    private async Task RunAsync(HpcNodes nodes, string client, string server)
    {
        var work = HpcNodes.CreateWorkDirectory("memcached");
        var address = nodes.Address(server);
        // Foreground (we own the PID), TCP and UDP on the same port, bound to the server's address.
        var memcached = nodes.Start(server, "memcached", "-l", address, "-p", $"{Port}", "-U", $"{Port}", "-u", "root", "-m", "16", "-t", "2", "-v");
        try
        {
            await nodes.WithLogsOnFailureAsync(output, () => [], async () =>
            {
                var servers = $"--servers={address}:{Port}";
                await Topology.Poll.AssertAsync(async () =>
                {
                    HpcNodes.ThrowIfExited(memcached);
                    return (await nodes.RunAsync(client, Short, "memcstat", servers)).Succeeded;
                }, Short, $"memcached answers at {address}:{Port}", TimeSpan.FromMilliseconds(200));

                var python = await nodes.RunAsync(client, Short, "/usr/bin/python3", "-c", ClientCode, address, $"{Port}");
                output.WriteLine(python.ToString());
                Assert.True(python.ExitCode == 0, python.ToString());
                Assert.Contains("OK", python.StandardOutput.Split('\n'));
                // Every UDP answer came from the server's address and port (its VIP on the overlay); the 5000-byte
                // value came back in several datagrams.
                var sources = UdpFrom().Matches(python.StandardOutput).Select(m => m.Groups[1].Value).Distinct().ToList();
                Assert.Equal([$"{address} {Port}"], sources);
                Assert.Matches("UDP-ANSWER [2-9] datagrams", python.StandardOutput);

                // libmemcached over UDP (connected socket, sendmsg, "noreply"), read back over TCP.
                var file = Path.Combine(work, "isthmus-udp-value");
                var content = $"memccp over UDP from {client} to {server} {Guid.NewGuid()}";
                await File.WriteAllTextAsync(file, content);
                var copy = await nodes.RunAsync(client, Short, "memccp", "--udp", servers, file);
                Assert.True(copy.ExitCode == 0, copy.ToString());
                string? stored = null;
                await Topology.Poll.AssertAsync(async () =>
                {
                    var cat = await nodes.RunAsync(client, Short, "memccat", servers, Path.GetFileName(file));
                    stored = cat.Succeeded ? cat.StandardOutput : null;
                    return stored is not null;
                }, Short, "memccp's UDP set arrived", TimeSpan.FromMilliseconds(200));
                Assert.Equal(content, stored);

                // memcslap: count-bounded TCP set and get load from the client.
                foreach (var test in SlapTests)
                {
                    var slap = await nodes.RunAsync(client, Long, "memcslap", servers, $"--test={test}", "--concurrency=4", "--execute-number=500");
                    output.WriteLine(slap.ToString());
                    Assert.True(slap.ExitCode == 0, slap.ToString());
                }
            });
        }
        finally
        {
            await memcached.StopAsync();
            output.WriteLine(memcached.Describe());
            HpcNodes.DeleteWorkDirectory(work);
        }
    }

    [GeneratedRegex("^UDP-FROM (.+)$", RegexOptions.Multiline)]
    private static partial Regex UdpFrom();
}
