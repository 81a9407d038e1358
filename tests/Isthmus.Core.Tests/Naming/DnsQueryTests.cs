using Isthmus.Core.Naming;
using Xunit;

namespace Isthmus.Core.Tests.Naming;

public sealed class DnsQueryTests
{
    private static readonly string[] ResolvConf =
    [
        "# generated",
        "search example.org",
        "nameserver 192.0.2.53",
        "nameserver   fe80::1",
        "nameserver\t198.51.100.53 # trailing words are ignored",
        "nameserver 010.0.0.1",
        "nameserver 203.0.113.53",
        "nameserver 203.0.113.54",
    ];

    private static readonly string[] NoServers = ["search example.org", "options ndots:2"];

    [Fact]
    public void Parses_AStandardQuery_WithItsNameTypeAndClass()
    {
        byte[] wire = [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 2, (byte)'b', (byte)'1', 1, (byte)'b', 2, (byte)'i', (byte)'t', 0, 0, 28, 0, 1];

        Assert.True(DnsQuery.TryParse(wire, out var query));

        Assert.Equal(new DnsQuery(0xABCD, 0x0100, "b1.b.it", DnsQuery.TypeAaaa, DnsQuery.ClassIn, wire.Length), query);
        Assert.True(query.IsStandardQuery);
    }

    [Theory]
    [InlineData("no question", new byte[] { 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData("two questions", new byte[] { 0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 })]
    [InlineData("label runs past the end", new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, (byte)'a', 0 })]
    [InlineData("no type and class", new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, (byte)'a', 0, 0 })]
    [InlineData("compression pointer", new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1 })]
    [InlineData("space in a label", new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, (byte)'a', (byte)' ', 0, 0, 1, 0, 1 })]
    [InlineData("dot in a label", new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, (byte)'a', (byte)'.', (byte)'b', 0, 0, 1, 0, 1 })]
    [InlineData("short header", new byte[] { 0, 1, 1, 0, 0 })]
    public void Refuses_WhatNoStubResolverSends(string why, byte[] wire)
    {
        Assert.False(DnsQuery.TryParse(wire, out _), why);
    }

    [Fact]
    public void Refuses_ANameLongerThan255Bytes()
    {
        var wire = new List<byte> { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
        for (var i = 0; i < 5; i++)
        {
            wire.Add(60);
            wire.AddRange(Enumerable.Repeat((byte)'a', 60));
        }

        wire.AddRange([0, 0, 1, 0, 1]);
        Assert.False(DnsQuery.TryParse(wire.ToArray(), out _));
    }

    [Theory]
    [InlineData("2.2.64.100.in-addr.arpa", 0x64400202u)]
    [InlineData("2.2.64.100.IN-ADDR.ARPA.", 0x64400202u)]
    [InlineData("0.0.0.0.in-addr.arpa", 0u)]
    public void ReverseNames_GiveTheAddress(string name, uint address)
    {
        Assert.True(DnsQuery.TryParseReverseName(name, out var parsed));
        Assert.Equal(address, parsed);
    }

    [Theory]
    [InlineData("2.64.100.in-addr.arpa")]
    [InlineData("1.2.2.64.100.in-addr.arpa")]
    [InlineData("02.2.64.100.in-addr.arpa")]
    [InlineData("256.2.64.100.in-addr.arpa")]
    [InlineData("2.2.64.100.ip6.arpa")]
    [InlineData("in-addr.arpa")]
    public void NotReverseNamesOfAnIPv4Address(string name)
    {
        Assert.False(DnsQuery.TryParseReverseName(name, out _));
    }

    [Fact]
    public void ResolvConf_GivesAtMostThreeIPv4Servers_InOrder_StrictlyParsed()
    {
        var servers = ResolverConfig.ParseNameServers(ResolvConf);

        Assert.Equal([0xC0000235u, 0xC6336435u, 0xCB007135u], servers);
    }

    [Fact]
    public void ResolvConf_WithoutServers_MeansLocalhost_AsGlibcAssumes()
    {
        Assert.Equal([0x7F000001u], ResolverConfig.ParseNameServers(NoServers));
        Assert.Equal([0x7F000001u], ResolverConfig.ReadNameServers("/nonexistent/resolv.conf"));
    }
}
