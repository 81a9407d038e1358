using System.Security.Cryptography;
using Isthmus.Core.Wire;
using Xunit;

namespace Isthmus.Core.Tests.Wire;

public sealed class LegHeaderTests
{
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);

    private static LegHeader Sample() => new(
        LegKind.TcpStream, 0x0102, Guid.NewGuid(),
        new VirtualEndpoint(0x64400102, 40000), new VirtualEndpoint(0x64400202, 6379),
        DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 0xDEADBEEF12345678);

    [Fact]
    public void RoundTrip_KeepsEveryField_AndTheMacVerifies()
    {
        var header = Sample();
        var raw = header.ToBytes(Key);
        Assert.Equal(LegHeader.Size, raw.Length);
        Assert.Equal(LegHeader.FirstByte, raw[0]);
        Assert.True(LegHeader.TryParse(raw, out var parsed, out var error), error);
        Assert.Equal(header, parsed);
        Assert.True(LegHeader.VerifyMac(raw, Key));
    }

    [Fact]
    public void Mac_FailsForAnotherKey_AndForAnyFlippedBit()
    {
        var raw = Sample().ToBytes(Key);
        Assert.False(LegHeader.VerifyMac(raw, RandomNumberGenerator.GetBytes(32)));
        for (var bit = 0; bit < 88 * 8; bit++)
        {
            var tampered = (byte[])raw.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.False(LegHeader.VerifyMac(tampered, Key), $"bit {bit} flipped still verifies");
        }
    }

    [Theory]
    [InlineData(0, "truncated")]
    [InlineData(95, "truncated")]
    public void Parse_RejectsShortInput(int length, string expected)
    {
        Assert.False(LegHeader.TryParse(new byte[length], out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RejectsBadMagicVersionAndKind()
    {
        var raw = Sample().ToBytes(Key);
        var badMagic = (byte[])raw.Clone();
        badMagic[0] = 0x16;
        Assert.False(LegHeader.TryParse(badMagic, out _, out var e1));
        Assert.Contains("magic", e1, StringComparison.Ordinal);
        var badVersion = (byte[])raw.Clone();
        badVersion[4] = 9;
        Assert.False(LegHeader.TryParse(badVersion, out _, out var e2));
        Assert.Contains("version", e2, StringComparison.Ordinal);
        var badKind = (byte[])raw.Clone();
        badKind[5] = 77;
        Assert.False(LegHeader.TryParse(badKind, out _, out var e3));
        Assert.Contains("kind", e3, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SurvivesRandomGarbage()
    {
        var random = new Random(1234);
        for (var i = 0; i < 10_000; i++)
        {
            var garbage = new byte[random.Next(0, 200)];
            random.NextBytes(garbage);
            if (LegHeader.TryParse(garbage, out var header, out _))
            {
                Assert.False(LegHeader.VerifyMac(garbage, Key));
                Assert.NotNull(header);
            }
        }
    }

    [Fact]
    public void Freshness_AcceptsTheWindow_RejectsOutside()
    {
        var now = DateTimeOffset.UtcNow;
        var header = Sample() with { TimestampMs = now.ToUnixTimeMilliseconds() };
        Assert.True(header.IsFresh(now + LegHeader.FreshnessWindow));
        Assert.False(header.IsFresh(now + LegHeader.FreshnessWindow + TimeSpan.FromSeconds(1)));
        Assert.False(header.IsFresh(now - LegHeader.FreshnessWindow - TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void Reply_RoundTripsEveryStatus_AndRejectsGarbage()
    {
        foreach (var status in Enum.GetValues<LegStatus>())
        {
            Assert.True(LegReply.TryDecode(LegReply.Encode(status), out var decoded));
            Assert.Equal(status, decoded);
        }

        Assert.False(LegReply.TryDecode(new byte[8], out _));
        var unknown = LegReply.Encode(LegStatus.Ok);
        unknown[4] = 200;
        Assert.False(LegReply.TryDecode(unknown, out _));
    }

    [Theory]
    [InlineData(LegStatus.Refused, 111)]
    [InlineData(LegStatus.HostUnreachable, 113)]
    [InlineData(LegStatus.NetworkUnreachable, 101)]
    [InlineData(LegStatus.TimedOut, 110)]
    [InlineData(LegStatus.AuthenticationFailed, 13)]
    [InlineData(LegStatus.BadRequest, 71)]
    public void Status_MapsToTheErrnoProgramsSee(LegStatus status, int errno) => Assert.Equal(errno, LegStatusErrno.ToErrno(status));
}
