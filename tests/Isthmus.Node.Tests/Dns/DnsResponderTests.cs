using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Isthmus.Core.Addressing;
using Isthmus.Core.Naming;
using Isthmus.Node.Dns;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Node.Tests.Dns;

/// <summary>The agent's DNS responder on a real loopback socket, asked by a real UDP client with byte-built queries.</summary>
public sealed class DnsResponderTests : IAsyncDisposable
{
    private static readonly NodeDirectory Directory = new("lab", ["east", "west"],
    [
        new DirectoryEntry("a1", "east", 0x64400102),
        new DirectoryEntry("b1", "west", 0x64400202),
        new DirectoryEntry("n1", "east", 0x64400103),
        new DirectoryEntry("n1", "west", 0x64400203),
    ]);

    private readonly CancellationTokenSource _stop = new(TimeSpan.FromSeconds(30));
    private readonly Socket _upstream = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly DnsResponder _responder;
    private readonly Task _serving;

    public DnsResponderTests()
    {
        // The stand-in for the site's real name server: a UDP socket on loopback that the test answers itself.
        _upstream.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _responder = new DnsResponder(() => Directory, "east", new VirtualNetwork(VirtualNetwork.DefaultNetwork, VirtualNetwork.DefaultImageBase),
            [(IPEndPoint)_upstream.LocalEndPoint!], NullLogger.Instance);
        _serving = _responder.RunAsync(_stop.Token);
    }

    [Theory]
    [InlineData("b1.west.lab", "100.64.2.2")]
    [InlineData("B1.West.LAB.", "100.64.2.2")]
    [InlineData("b1", "100.64.2.2")]
    [InlineData("n1", "100.64.1.3")] // the asker's own site first
    [InlineData("n1.west.lab", "100.64.2.3")]
    public async Task A_ForAClusterName_IsTheVip_Authoritative_WithTheQuestionEchoed(string name, string vip)
    {
        var query = Query(0x1234, name, type: 1);

        var answer = await AskAsync(query);

        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(answer));
        var flags = BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(2));
        Assert.Equal(0x8000, flags & 0x8000); // QR
        Assert.Equal(0x0400, flags & 0x0400); // AA
        Assert.Equal(0x0100, flags & 0x0100); // RD copied
        Assert.Equal(0, flags & 0xF); // NOERROR
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(4)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(6)));
        var questionLength = query.Length - 12;
        Assert.Equal(query.AsSpan(12).ToArray(), answer.AsSpan(12, questionLength).ToArray());
        var rr = answer.AsSpan(12 + questionLength);
        Assert.Equal(0xC00C, BinaryPrimitives.ReadUInt16BigEndian(rr)); // the question's name
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(rr[2..])); // A
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(rr[4..])); // IN
        Assert.Equal(4, BinaryPrimitives.ReadUInt16BigEndian(rr[10..]));
        Assert.Equal(IPAddress.Parse(vip), new IPAddress(rr.Slice(12, 4)));
        Assert.Equal(12 + questionLength + 16, answer.Length);
    }

    [Fact]
    public async Task Aaaa_ForAClusterName_IsNoDataNotNxdomain()
    {
        var answer = await AskAsync(Query(7, "b1.west.lab", type: 28));

        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(2)) & 0xF);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(6)));
    }

    [Theory]
    [InlineData("zz.west.lab")]
    [InlineData("lab")]
    [InlineData("b1.nowhere.lab")]
    public async Task UnknownNameInTheClusterDomain_IsNxdomain_AtOnce(string name)
    {
        var answer = await AskAsync(Query(9, name, type: 1));

        Assert.Equal(3, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(2)) & 0xF);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(6)));
    }

    [Fact]
    public async Task Ptr_OfAHeldVip_IsItsCanonicalName_AndOfAFreeVip_Nxdomain()
    {
        var answer = await AskAsync(Query(11, "2.2.64.100.in-addr.arpa", type: 12));
        var rr = answer.AsSpan(12 + "2.2.64.100.in-addr.arpa".Length + 2 + 4);
        Assert.Equal(12, BinaryPrimitives.ReadUInt16BigEndian(rr[2..]));
        Assert.Equal("b1.west.lab", ReadName(rr[12..].ToArray()));

        var free = await AskAsync(Query(12, "9.9.64.100.in-addr.arpa", type: 12));
        Assert.Equal(3, BinaryPrimitives.ReadUInt16BigEndian(free.AsSpan(2)) & 0xF);
    }

    [Fact]
    public async Task OtherNames_AreForwardedByteForByte_AndTheRealAnswerComesBack()
    {
        var query = Query(0xBEEF, "www.example.org", type: 1);
        using var client = Client();
        await client.SendToAsync(query, _responder.LocalEndPoint);

        var buffer = new byte[512];
        var received = await _upstream.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
        Assert.Equal(query, buffer[..received.ReceivedBytes]);
        var realAnswer = query.ToArray();
        realAnswer[2] |= 0x80; // the upstream's answer, recognisable by its bytes
        realAnswer[3] = 0x83;
        await _upstream.SendToAsync(realAnswer, received.RemoteEndPoint);

        var n = await client.ReceiveAsync(buffer, _stop.Token);
        Assert.Equal(realAnswer, buffer[..n]);
    }

    [Fact]
    public async Task MalformedQuery_GetsFormErr_AndResponsesAreNotAnswered()
    {
        var truncated = Query(21, "b1.west.lab", type: 1)[..20];
        var answer = await AskAsync(truncated);
        Assert.Equal(21, BinaryPrimitives.ReadUInt16BigEndian(answer));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(2)) & 0xF);
        Assert.Equal(12, answer.Length);

        // A response (QR set) is dropped: answering it could start a loop between two responders.
        using var client = Client();
        var response = Query(22, "b1.west.lab", type: 1);
        response[2] |= 0x80;
        await client.SendToAsync(response, _responder.LocalEndPoint);
        await client.SendToAsync(Query(23, "b1", type: 1), _responder.LocalEndPoint);
        var buffer = new byte[512];
        var n = await client.ReceiveAsync(buffer, _stop.Token);
        Assert.Equal(23, BinaryPrimitives.ReadUInt16BigEndian(buffer)); // the next answer is the next query's
    }

    [Fact]
    public async Task NonStandardOpcode_IsNotImplemented()
    {
        var query = Query(31, "b1", type: 1);
        query[2] |= 0x10; // opcode 2 (STATUS)
        var answer = await AskAsync(query);
        Assert.Equal(4, BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(2)) & 0xF);
    }

    private async Task<byte[]> AskAsync(byte[] query)
    {
        using var client = Client();
        await client.SendToAsync(query, _responder.LocalEndPoint);
        var buffer = new byte[1024];
        var n = await client.ReceiveAsync(buffer, _stop.Token);
        return buffer[..n];
    }

    private static Socket Client()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    /// <summary>A standard query as a stub resolver writes it: RD set, one question of class IN.</summary>
    private static byte[] Query(ushort id, string name, ushort type)
    {
        var bytes = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        return [.. bytes];
    }

    private static string ReadName(byte[] wire)
    {
        var labels = new List<string>();
        for (var i = 0; wire[i] != 0; i += wire[i] + 1)
        {
            labels.Add(Encoding.ASCII.GetString(wire, i + 1, wire[i]));
        }

        return string.Join('.', labels);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _serving;
        _responder.Dispose();
        _upstream.Dispose();
        _stop.Dispose();
    }
}
