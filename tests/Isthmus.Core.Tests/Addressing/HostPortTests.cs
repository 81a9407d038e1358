using System.Net;
using Isthmus.Core.Addressing;
using Xunit;

namespace Isthmus.Core.Tests.Addressing;

public class HostPortTests
{
    [Theory]
    [InlineData("192.0.2.10:7000", "192.0.2.10", 7000)]
    [InlineData("head.site-a.example:1", "head.site-a.example", 1)]
    [InlineData("localhost:65535", "localhost", 65535)]
    [InlineData("[2001:db8::1]:443", "2001:db8::1", 443)]
    [InlineData("[::1]:7000", "::1", 7000)]
    [InlineData("node_1:80", "node_1", 80)]
    public void Parses_and_round_trips(string text, string host, int port)
    {
        var hp = HostPort.Parse(text);
        Assert.Equal(host, hp.Host);
        Assert.Equal(port, hp.Port);
        Assert.Equal(text, hp.ToString());
        Assert.Equal(hp, HostPort.Parse(hp.ToString()));
    }

    [Theory]
    [InlineData("", "missing address")]
    [InlineData("host", "has no port")]
    [InlineData("host:", "port must be a number 1..65535")]
    [InlineData("host:0", "port must be a number 1..65535")]
    [InlineData("host:65536", "port must be a number 1..65535")]
    [InlineData("host:-1", "port must be a number 1..65535")]
    [InlineData("host:80x", "port must be a number 1..65535")]
    [InlineData(":80", "is not a host name or IPv4 address")]
    [InlineData("2001:db8::1:80", "write an IPv6 address in brackets")]
    [InlineData("[2001:db8::1]", "an IPv6 address is written [addr]:port")]
    [InlineData("[2001:db8::1]80", "an IPv6 address is written [addr]:port")]
    [InlineData("[10.0.0.1]:80", "is not an IPv6 address")]
    [InlineData("bad host:80", "is not a host name or IPv4 address")]
    [InlineData("-bad:80", "is not a host name or IPv4 address")]
    [InlineData("a..b:80", "is not a host name or IPv4 address")]
    [InlineData("10.0.0.300:80", "is not a host name or IPv4 address")]
    public void Refuses_bad_text(string text, string reason)
    {
        Assert.False(HostPort.TryParse(text, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
        Assert.Equal(error, Assert.Throws<UserException>(() => HostPort.Parse(text)).Message);
    }

    [Fact]
    public void Constructor_checks_the_port()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HostPort("h", 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HostPort("h", 65536));
    }

    [Fact]
    public void Literal_addresses_become_endpoints()
    {
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.10"), 7000), HostPort.Parse("192.0.2.10:7000").ToIPEndPoint());
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::1"), 7000), HostPort.Parse("[2001:db8::1]:7000").ToIPEndPoint());
    }

    [Fact]
    public void Names_are_not_resolved()
    {
        var e = Assert.Throws<UserException>(() => HostPort.Parse("head.example:7000").ToIPEndPoint());
        Assert.Contains("not resolved", e.Message, StringComparison.Ordinal);
    }
}
