using System.Buffers.Binary;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Wire;

/// <summary>The byte layout the C shim writes (native/preload/agent_rpc.c), checked field by field.</summary>
public sealed class ShimMessageTests
{
    [Fact]
    public void Request_ParsesTheShimsLayout()
    {
        var bytes = new byte[ShimRequest.Size];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, ShimRequest.Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(6), (ushort)ShimOp.Connect);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        bytes[12] = 100; bytes[13] = 64; bytes[14] = 2; bytes[15] = 2;           // dst 100.64.2.2
        bytes[16] = 0x18; bytes[17] = 0xEB;                                       // dst port 6379
        bytes[18] = 0x9C; bytes[19] = 0x40;                                       // src port 40000
        bytes[20] = 127; bytes[21] = 100; bytes[22] = 1; bytes[23] = 2;          // src 127.100.1.2
        Assert.True(ShimRequest.TryParse(bytes, out var request));
        Assert.Equal(ShimOp.Connect, request.Op);
        Assert.True(request.NonBlocking);
        Assert.Equal(new VirtualEndpoint(0x64400202, 6379), request.Destination);
        Assert.Equal(0x7F640102u, request.SourceAddress);
        Assert.Equal(40000, request.SourcePort);

        var written = new byte[ShimRequest.Size];
        request.Write(written);
        Assert.Equal(bytes, written);
    }

    [Fact]
    public void Request_RejectsWrongSizeMagicVersionAndOp()
    {
        var good = new byte[ShimRequest.Size];
        new ShimRequest(ShimOp.Peer, false, default, 1, 2).Write(good);
        Assert.True(ShimRequest.TryParse(good, out _));
        Assert.False(ShimRequest.TryParse(good.AsSpan(0, 31), out _));
        foreach (var (offset, value) in new[] { (0, (byte)0), (4, (byte)7), (6, (byte)10) })
        {
            var bad = (byte[])good.Clone();
            bad[offset] = value;
            Assert.False(ShimRequest.TryParse(bad, out _));
        }
    }

    [Theory]
    [InlineData(ShimOp.Direct)]
    [InlineData(ShimOp.Adopt)]
    [InlineData(ShimOp.Listen)]
    [InlineData(ShimOp.DirectPeer)]
    public void DirectStreamOps_Parse_WithoutPayload(ShimOp op)
    {
        var bytes = new byte[ShimRequest.Size];
        new ShimRequest(op, false, new VirtualEndpoint(0x64400103, 7600), 0x7F640102, 40000).Write(bytes);
        Assert.True(ShimRequest.TryParse(bytes, out var parsed));
        Assert.Equal(op, parsed.Op);
        Assert.False(ShimRequest.TryParse([.. bytes, 1], out _));
    }

    [Fact]
    public void Response_CarriesABinaryGrant_InThePayloadSlot()
    {
        var grant = Enumerable.Range(0, LegHeader.Size).Select(i => (byte)i).ToArray();
        var response = new ShimResponse(0, new VirtualEndpoint(0xC000020B, 40113), Data: grant);
        var bytes = new byte[response.Length];
        response.Write(bytes);
        Assert.Equal(ShimResponse.Size + LegHeader.Size, bytes.Length);
        Assert.Equal(LegHeader.Size, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(14)));
        Assert.Equal(grant, bytes[ShimResponse.Size..]);
    }

    [Fact]
    public void Response_RoundTrips()
    {
        var bytes = new byte[ShimResponse.Size];
        new ShimResponse(113, new VirtualEndpoint(0x64400303, 22)).Write(bytes);
        Assert.Equal(113, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(new byte[] { 100, 64, 3, 3, 0, 22 }, bytes[8..14]);
        Assert.True(ShimResponse.TryParse(bytes, out var parsed));
        Assert.Equal(113, parsed.Error);
    }

    [Fact]
    public void ResolveName_CarriesTheNameAfterTheHeader()
    {
        var request = new ShimRequest(ShimOp.ResolveName, false, default, 0, 0, "b1.east.demo");
        var bytes = new byte[request.Length];
        request.Write(bytes);
        Assert.Equal(ShimRequest.Size + 12, bytes.Length);
        Assert.Equal("b1.east.demo"u8.ToArray(), bytes[ShimRequest.Size..]);
        Assert.True(ShimRequest.TryParse(bytes, out var parsed));
        Assert.Equal("b1.east.demo", parsed.Name);
    }

    [Theory]
    [InlineData(ShimOp.ResolveName, "")]
    [InlineData(ShimOp.ResolveName, "has space")]
    [InlineData(ShimOp.ResolveName, "nul\0")]
    [InlineData(ShimOp.Connect, "x")]
    [InlineData(ShimOp.UdpRoute, "x")]
    public void Requests_WithAMissingOrForbiddenPayload_AreRejected(ShimOp op, string payload)
    {
        var bytes = new byte[ShimRequest.Size + payload.Length];
        new ShimRequest(op, false, default, 0, 0).Write(bytes);
        System.Text.Encoding.Latin1.GetBytes(payload, bytes.AsSpan(ShimRequest.Size));
        Assert.False(ShimRequest.TryParse(bytes, out _));
    }

    [Fact]
    public void Request_RejectsAnOverlongName()
    {
        var bytes = new byte[ShimRequest.Size + 254];
        new ShimRequest(ShimOp.ResolveName, false, default, 0, 0).Write(bytes);
        bytes.AsSpan(ShimRequest.Size).Fill((byte)'a');
        Assert.False(ShimRequest.TryParse(bytes, out _));
    }

    [Fact]
    public void Response_CarriesTheCanonicalNameWithItsLength()
    {
        var response = new ShimResponse(0, new VirtualEndpoint(0x64400202, 0), "b1.east.demo");
        var bytes = new byte[response.Length];
        response.Write(bytes);
        Assert.Equal(12, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(14)));
        Assert.True(ShimResponse.TryParse(bytes, out var parsed));
        Assert.Equal("b1.east.demo", parsed.Name);
        Assert.Equal(0x64400202u, parsed.Endpoint.Address);
        Assert.False(ShimResponse.TryParse(bytes.AsSpan(0, bytes.Length - 1), out _));
    }
}
