using System.Buffers.Binary;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Wire;

public sealed class ControlChannelTests
{
    [Fact]
    public async Task Messages_RoundTrip_AndEndOfStreamIsNull()
    {
        var stream = new MemoryStream();
        var writer = new ControlChannel(stream);
        await writer.SendAsync(new ControlMessage { Type = ControlMessage.Enrolled, Vip = "100.64.1.2", SessionId = 42, LeaseSeconds = 15 }, default);
        await writer.SendAsync(new ControlMessage { Type = ControlMessage.Ping }, default);
        var reader = new ControlChannel(new MemoryStream(stream.ToArray()));
        var first = await reader.ReceiveAsync(default);
        Assert.Equal(ControlMessage.Enrolled, first!.Type);
        Assert.Equal("100.64.1.2", first.Vip);
        Assert.Equal(42UL, first.SessionId);
        Assert.Equal(ControlMessage.Ping, (await reader.ReceiveAsync(default))!.Type);
        Assert.Null(await reader.ReceiveAsync(default));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(ControlChannel.MaxFrame + 1u)]
    [InlineData(uint.MaxValue)]
    public async Task OversizedOrEmptyFrames_AreProtocolErrors(uint length)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
        var channel = new ControlChannel(new MemoryStream(bytes));
        await Assert.ThrowsAsync<ProtocolException>(() => channel.ReceiveAsync(default));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"nonce\":\"x\"}")]
    [InlineData("null")]
    [InlineData("{\"type\":5}")]
    public async Task MalformedJson_IsAProtocolError(string payload)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(payload);
        var bytes = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)body.Length);
        body.CopyTo(bytes, 4);
        var channel = new ControlChannel(new MemoryStream(bytes));
        await Assert.ThrowsAsync<ProtocolException>(() => channel.ReceiveAsync(default));
    }

    [Fact]
    public async Task TruncatedFrame_IsAProtocolError()
    {
        var bytes = new byte[4 + 3];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, 10);
        var channel = new ControlChannel(new MemoryStream(bytes));
        await Assert.ThrowsAsync<ProtocolException>(() => channel.ReceiveAsync(default));
    }
}
