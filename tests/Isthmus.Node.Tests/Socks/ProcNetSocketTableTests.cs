using System.Net;
using Isthmus.Node.Socks;
using Xunit;

namespace Isthmus.Node.Tests.Socks;

/// <summary>The /proc/net/{tcp,udp}[6] parser on text as a little-endian kernel writes it.</summary>
public sealed class ProcNetSocketTableTests
{
    private static readonly string[] Tcp =
    [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        "   0: 0100007F:0438 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21061 1 0000000000000000 100 0 0 10 0",
        "   1: 0100007F:0438 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 21070 1 0000000000000000 20 4 30 10 -1",
        "   2: 0100007F:D431 0100007F:0438 01 00000000:00000000 00:00000000 00000000  1000        0 21069 1 0000000000000000 20 4 30 10 -1",
        "   3: 0201647F:C350 0301647F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 21080 1 0000000000000000 20 4 30 10 -1",
    ];

    private static readonly string[] Tcp6 =
    [
        "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        "   0: 0000000000000000FFFF00000100007F:E0F2 0000000000000000FFFF00000100007F:0438 01 00000000:00000000 00:00000000 00000000  1002        0 3 1 0 20 4 30 10 -1",
        "   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0",
    ];

    private static IPEndPoint Ep(string address, int port) => new(IPAddress.Parse(address), port);

    [Fact]
    public void ParsesAddressesPortsAndUid()
    {
        var rows = ProcNetSocketTable.Parse(Tcp).ToList();

        Assert.Equal(4, rows.Count); // the header is skipped
        Assert.Equal(new ProcNetSocketTable.Row(Ep("127.0.0.1", 0xD431), Ep("127.0.0.1", 1080), 1000), rows[2]);
        Assert.Equal(new ProcNetSocketTable.Row(Ep("127.100.1.2", 50000), Ep("127.100.1.3", 8080), 1001), rows[3]);
    }

    [Fact]
    public void FindsTheClientsEnd_NotTheAcceptedEnd()
    {
        Assert.Equal(1000u, ProcNetSocketTable.FindTcpOwner(Tcp, Ep("127.0.0.1", 0xD431), Ep("127.0.0.1", 1080)));
        Assert.Equal(0u, ProcNetSocketTable.FindTcpOwner(Tcp, Ep("127.0.0.1", 1080), Ep("127.0.0.1", 0xD431)));
        Assert.Null(ProcNetSocketTable.FindTcpOwner(Tcp, Ep("127.0.0.1", 0xD432), Ep("127.0.0.1", 1080)));
    }

    [Fact]
    public void V4MappedRowsOfTcp6_MatchIPv4AndMappedEndpoints()
    {
        Assert.Equal(1002u, ProcNetSocketTable.FindTcpOwner(Tcp6, Ep("127.0.0.1", 0xE0F2), Ep("127.0.0.1", 1080)));
        Assert.Equal(1002u, ProcNetSocketTable.FindTcpOwner(Tcp6, Ep("::ffff:127.0.0.1", 0xE0F2), Ep("::ffff:127.0.0.1", 1080)));
        var ipv6 = ProcNetSocketTable.Parse(Tcp6).Last();
        Assert.Equal(Ep("::1", 22), ipv6.Local);
    }

    [Fact]
    public void UdpOwners_IncludeWildcardBinds_OnThePort()
    {
        string[] udp =
        [
            "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
            "  100: 00000000:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 500 2 0000000000000000 0",
            "  101: 0100007F:9C41 00000000:0000 07 00000000:00000000 00:00000000 00000000  1001        0 501 2 0000000000000000 0",
            "  102: 0200007F:9C41 00000000:0000 07 00000000:00000000 00:00000000 00000000  1002        0 502 2 0000000000000000 0",
        ];

        Assert.Equal([1000u], ProcNetSocketTable.FindUdpOwners(udp, Ep("127.0.0.1", 0x9C40)));
        Assert.Equal([1001u], ProcNetSocketTable.FindUdpOwners(udp, Ep("127.0.0.1", 0x9C41)));
        Assert.Empty(ProcNetSocketTable.FindUdpOwners(udp, Ep("127.0.0.1", 0x9C42)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("   0: 0100007F:0438 00000000:0000 0A 00000000:00000000 00:00000000 00000000")] // no uid column
    [InlineData("   0: 0100007F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  0 1")] // no port
    [InlineData("   0: 0100007G:0438 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  0 1")] // not hex
    [InlineData("   0: 0100007F:0438 00000000:0000 0A 00000000:00000000 00:00000000 00000000    -1  0 1")] // bad uid
    public void MalformedLines_AreSkipped(string line) =>
        Assert.False(ProcNetSocketTable.TryParseRow(line, out _));
}
