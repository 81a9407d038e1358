using System.Net;
using Isthmus.Core.Addressing;
using Xunit;

namespace Isthmus.Core.Tests.Addressing;

public class IPv4CidrTests
{
    [Theory]
    [InlineData("0.0.0.0", 0u)]
    [InlineData("10.1.2.3", 0x0A010203u)]
    [InlineData("255.255.255.255", 0xFFFFFFFFu)]
    [InlineData("127.100.0.0", 0x7F640000u)]
    public void IPv4_parses_and_formats(string text, uint value)
    {
        Assert.Equal(value, IPv4.Parse(text));
        Assert.Equal(text, IPv4.Format(value));
        Assert.Equal(IPAddress.Parse(text), IPv4.ToIPAddress(value));
        Assert.Equal(value, IPv4.ToUInt32(IPAddress.Parse(text)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.1.2")]
    [InlineData("10.1")]
    [InlineData("10.1.2.3.4")]
    [InlineData("10.1.2.256")]
    [InlineData("010.1.2.3")]
    [InlineData("10.1.2.3 ")]
    [InlineData("10..2.3")]
    [InlineData("0x0A.1.2.3")]
    [InlineData("1000.1.2.3")]
    [InlineData("-1.1.2.3")]
    public void IPv4_refuses_non_strict_forms(string text)
    {
        Assert.False(IPv4.TryParse(text, out _));
        Assert.Throws<UserException>(() => IPv4.Parse(text));
    }

    [Fact]
    public void IPv4_accepts_mapped_addresses_and_refuses_ipv6()
    {
        Assert.Equal(0x0A000001u, IPv4.ToUInt32(IPAddress.Parse("::ffff:10.0.0.1")));
        Assert.Throws<ArgumentException>(() => IPv4.ToUInt32(IPAddress.IPv6Loopback));
    }

    [Fact]
    public void Parses_a_network()
    {
        var cidr = IPv4Cidr.Parse("100.64.0.0/16");
        Assert.Equal(0x64400000u, cidr.Network);
        Assert.Equal(16, cidr.PrefixLength);
        Assert.Equal(0xFFFF0000u, cidr.Mask);
        Assert.Equal(0x0000FFFFu, cidr.HostMask);
        Assert.Equal(0x64400000u, cidr.First);
        Assert.Equal(0x6440FFFFu, cidr.Last);
        Assert.Equal(65536UL, cidr.AddressCount);
        Assert.Equal("100.64.0.0/16", cidr.ToString());
    }

    [Theory]
    [InlineData("0.0.0.0/0", 4294967296UL)]
    [InlineData("10.0.0.0/8", 16777216UL)]
    [InlineData("10.1.2.3/32", 1UL)]
    [InlineData("10.1.2.0/31", 2UL)]
    public void Edge_prefixes(string text, ulong count)
    {
        var cidr = IPv4Cidr.Parse(text);
        Assert.Equal(count, cidr.AddressCount);
        Assert.Equal(text, cidr.ToString());
        Assert.True(cidr.Contains(cidr.First));
        Assert.True(cidr.Contains(cidr.Last));
    }

    [Theory]
    [InlineData("10.1.2.3/16", "host bits are set (did you mean 10.1.0.0/16?)")]
    [InlineData("10.0.0.0/33", "prefix length must be a number 0..32")]
    [InlineData("10.0.0.0/-1", "prefix length must be a number 0..32")]
    [InlineData("10.0.0.0/", "prefix length must be a number 0..32")]
    [InlineData("10.0.0.0/08", "prefix length must be a number 0..32")]
    [InlineData("10.0.0.0/ 8", "prefix length must be a number 0..32")]
    [InlineData("10.0.0.0", "the prefix length is missing")]
    [InlineData("10.0.0/8", "'10.0.0' is not an IPv4 address")]
    [InlineData("", "the prefix length is missing")]
    public void Refuses_bad_networks(string text, string reason)
    {
        Assert.False(IPv4Cidr.TryParse(text, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
        var e = Assert.Throws<UserException>(() => IPv4Cidr.Parse(text));
        Assert.Equal(error, e.Message);
    }

    [Fact]
    public void Constructor_refuses_host_bits_and_bad_prefix()
    {
        Assert.Throws<ArgumentException>(() => new IPv4Cidr(0x0A000001, 24));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IPv4Cidr(0, 33));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IPv4Cidr(0, -1));
    }

    [Fact]
    public void Contains_and_overlaps()
    {
        var net = IPv4Cidr.Parse("100.64.0.0/16");
        var a = IPv4Cidr.Parse("100.64.1.0/24");
        var b = IPv4Cidr.Parse("100.64.1.128/25");
        var c = IPv4Cidr.Parse("100.64.2.0/24");
        var outside = IPv4Cidr.Parse("100.65.0.0/24");

        Assert.True(net.Contains(IPv4.Parse("100.64.255.255")));
        Assert.False(net.Contains(IPv4.Parse("100.65.0.0")));
        Assert.False(net.Contains(IPv4.Parse("100.63.255.255")));
        Assert.True(net.Contains(a));
        Assert.True(net.Contains(net));
        Assert.False(a.Contains(net));
        Assert.False(net.Contains(outside));
        Assert.True(a.Overlaps(b));
        Assert.True(b.Overlaps(a));
        Assert.False(a.Overlaps(c));
        Assert.True(net.Overlaps(c));
        Assert.False(net.Overlaps(outside));
    }

    [Fact]
    public void Is_a_value()
    {
        Assert.Equal(IPv4Cidr.Parse("10.0.0.0/8"), new IPv4Cidr(0x0A000000, 8));
        Assert.NotEqual(IPv4Cidr.Parse("10.0.0.0/8"), IPv4Cidr.Parse("10.0.0.0/9"));
        var (network, prefix) = IPv4Cidr.Parse("10.0.0.0/8");
        Assert.Equal((0x0A000000u, 8), (network, prefix));
    }
}
