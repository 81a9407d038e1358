using System.Buffers.Binary;
using System.Formats.Asn1;
using Isthmus.Core.Config;
using Isthmus.Core.Naming;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Fuzz;

/// <summary>One regression test per problem the fuzz harness (or its review) found; docs/ARCHITECTURE.md lists them.</summary>
public sealed class FuzzFindingsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(55)]
    [InlineData(LegHeader.Size - 1)]
    public void VerifyMac_of_a_short_input_is_false_not_an_exception(int length)
    {
        Assert.False(LegHeader.VerifyMac(new byte[length], new byte[32]));
    }

    [Fact]
    public void IsFresh_at_the_edges_of_long_does_not_throw()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
        foreach (var timestamp in new[] { long.MinValue, long.MaxValue, now.ToUnixTimeMilliseconds() + long.MinValue, now.ToUnixTimeMilliseconds() - long.MinValue + 1 })
        {
            var header = new LegHeader(LegKind.TcpStream, 0, Guid.NewGuid(), default, default, timestamp, 0);
            Assert.False(header.IsFresh(now));
        }

        Assert.True(new LegHeader(LegKind.TcpStream, 0, Guid.NewGuid(), default, default, now.ToUnixTimeMilliseconds() + 120_000, 0).IsFresh(now));
        Assert.False(new LegHeader(LegKind.TcpStream, 0, Guid.NewGuid(), default, default, now.ToUnixTimeMilliseconds() + 120_001, 0).IsFresh(now));
    }

    [Fact]
    public void An_enrol_key_on_an_unknown_curve_does_not_verify()
    {
        // SubjectPublicKeyInfo { id-ecPublicKey, curve OID 1.2.840.10109.3.1.7 (no such curve here), a point }.
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            using (writer.PushSequence())
            {
                writer.WriteObjectIdentifier("1.2.840.10045.2.1");
                writer.WriteObjectIdentifier("1.2.840.10109.3.1.7");
            }

            writer.WriteBitString([4, .. new byte[64]]);
        }

        Assert.False(EnrolmentProof.VerifyNonceSignature(writer.Encode(), "nonce"u8, new byte[64]));
    }

    [Theory]
    [InlineData("[{\"name\":null,\"site\":\"a\",\"vip\":\"100.64.1.2\"}]")]
    [InlineData("[{\"name\":\"a1\",\"site\":null,\"vip\":\"100.64.1.2\"}]")]
    [InlineData("[{\"name\":\"a1\",\"site\":\"a\",\"vip\":null}]")]
    [InlineData("[null]")]
    public void A_directory_with_null_fields_is_a_protocol_error(string json)
    {
        Assert.Throws<ProtocolException>(() => DirectoryCodec.Decode(System.Text.Encoding.UTF8.GetBytes(json)));
    }

    [Fact]
    public async Task A_link_frame_announcing_4_MiB_costs_what_arrived_not_what_it_announced()
    {
        var bytes = new byte[10];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, LinkFrame.MaxBody + 1);
        var before = GC.GetAllocatedBytesForCurrentThread();
        await Assert.ThrowsAsync<ProtocolException>(() => new LinkFrameReader(new MemoryStream(bytes)).RunAsync((_, _) => { }, default));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 1 << 20);
    }

    [Fact]
    public async Task A_link_frame_of_the_largest_size_is_still_read_whole()
    {
        var body = new byte[LinkFrame.MaxBody];
        new Random(7).NextBytes(body);
        var frames = new MemoryStream([.. LinkFrame.Create(LinkFrameType.Directory, body), .. LinkFrame.Datagram(new(1, 2), new(3, 4), [9, 9])]);
        var seen = new List<byte[]>();
        await new LinkFrameReader(frames).RunAsync((type, b) => seen.Add([(byte)type, .. b]), default);
        Assert.Equal(2, seen.Count);
        Assert.True(seen[0].AsSpan(1).SequenceEqual(body));
        Assert.Equal(LinkFrame.DatagramHeaderSize + 2, seen[1].Length - 1);
    }

    [Fact]
    public async Task A_control_frame_announcing_4_MiB_costs_what_arrived()
    {
        var bytes = new byte[10];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, ControlChannel.MaxFrame);
        var before = GC.GetAllocatedBytesForCurrentThread();
        await Assert.ThrowsAsync<ProtocolException>(() => new ControlChannel(new MemoryStream(bytes)).ReceiveAsync(default));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 256 << 10);
    }

    [Fact]
    public async Task A_router_refuses_node_frames_over_64_KiB()
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, ControlChannel.MaxNodeFrame + 1u);
        var error = await Assert.ThrowsAsync<ProtocolException>(() => new ControlChannel(new MemoryStream(bytes), ControlChannel.MaxNodeFrame).ReceiveAsync(default));
        Assert.Contains("allowed 1..65536", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_large_control_frame_is_read_whole()
    {
        var nodes = Enumerable.Range(0, 20_000).Select(i => new DirectoryNode { Name = $"n{i}", Site = "west", Vip = "100.64.1.2" }).ToList();
        var stream = new MemoryStream();
        await new ControlChannel(stream).SendAsync(new ControlMessage { Type = ControlMessage.Directory, Nodes = nodes }, default);
        Assert.True(stream.Length > 64 << 10);
        stream.Position = 0;
        var message = await new ControlChannel(stream).ReceiveAsync(default);
        Assert.Equal(nodes, message!.Nodes);
    }

    [Theory]
    [InlineData("a = \"\\UFFFFFFFF\"")]
    [InlineData("a = \"\\U80000000\"")]
    public void A_toml_escape_above_int_range_is_a_config_error(string text)
    {
        var error = Assert.Throws<ConfigException>(() => TomlDocument.Parse(text, "c.toml"));
        Assert.StartsWith("c.toml:1: bad escape", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Toml_arrays_nested_beyond_the_limit_are_a_config_error_not_a_stack_overflow()
    {
        var deep = "a = " + new string('[', 50_000) + new string(']', 50_000);
        var error = Assert.Throws<ConfigException>(() => TomlDocument.Parse(deep, "c.toml"));
        Assert.Equal("c.toml:1: arrays nested deeper than 32 levels", error.Message);
        var ok = "a = " + new string('[', TomlParser.MaxArrayDepth) + new string(']', TomlParser.MaxArrayDepth);
        Assert.Equal(TomlValueKind.Array, TomlDocument.Parse(ok).Root.GetValue("a")!.Kind);
    }
}
