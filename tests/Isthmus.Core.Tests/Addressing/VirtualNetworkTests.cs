using Isthmus.Core.Addressing;
using Xunit;

namespace Isthmus.Core.Tests.Addressing;

public class VirtualNetworkTests
{
    [Fact]
    public void Default_plan_translates_both_ways()
    {
        var plan = new VirtualNetwork(VirtualNetwork.DefaultNetwork);
        Assert.Equal("100.64.0.0/16", plan.Network.ToString());
        Assert.Equal("127.100.0.0/16", plan.ImageRange.ToString());
        var vip = IPv4.Parse("100.64.1.2");
        Assert.True(plan.IsVirtual(vip));
        Assert.False(plan.IsImage(vip));
        var image = plan.ToImage(vip);
        Assert.Equal("127.100.1.2", IPv4.Format(image));
        Assert.True(plan.IsImage(image));
        Assert.False(plan.IsVirtual(image));
        Assert.Equal(vip, plan.FromImage(image));
    }

    [Theory]
    [InlineData("100.64.0.0/16", "127.100.0.0")]
    [InlineData("10.20.0.0/20", "127.5.16.0")]
    [InlineData("192.168.7.0/24", "127.200.3.0")]
    [InlineData("100.64.0.16/28", "127.1.0.0")]
    public void Every_address_round_trips(string network, string imageBase)
    {
        var plan = new VirtualNetwork(IPv4Cidr.Parse(network), IPv4.Parse(imageBase));
        var step = Math.Max(1u, (uint)(plan.Network.AddressCount / 4096));
        for (var vip = plan.Network.First; vip <= plan.Network.Last && vip >= plan.Network.First; vip += step)
        {
            var image = plan.ToImage(vip);
            Assert.True(plan.IsImage(image));
            Assert.Equal(vip & plan.Network.HostMask, image & plan.Network.HostMask);
            Assert.Equal(vip, plan.FromImage(image));
        }

        Assert.Equal(plan.Network.Last, plan.FromImage(plan.ToImage(plan.Network.Last)));
    }

    [Fact]
    public void Addresses_outside_are_refused()
    {
        var plan = new VirtualNetwork(IPv4Cidr.Parse("100.64.0.0/16"));
        Assert.False(plan.IsVirtual(IPv4.Parse("100.65.0.1")));
        Assert.False(plan.IsImage(IPv4.Parse("127.0.0.1")));
        Assert.False(plan.IsImage(IPv4.Parse("127.101.0.1")));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.ToImage(IPv4.Parse("10.0.0.1")));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.FromImage(IPv4.Parse("127.0.0.1")));
    }

    [Theory]
    [InlineData("10.0.0.0/8", "127.0.0.0", "prefix length must be 16..28")]
    [InlineData("10.0.0.0/15", "127.100.0.0", "prefix length must be 16..28")]
    [InlineData("10.0.0.0/29", "127.100.0.0", "prefix length must be 16..28")]
    [InlineData("100.64.0.0/16", "10.100.0.0", "is not in 127.0.0.0/8")]
    [InlineData("100.64.0.0/16", "128.100.0.0", "is not in 127.0.0.0/8")]
    [InlineData("100.64.0.0/16", "127.100.1.0", "has bits set in the host part of 100.64.0.0/16 (did you mean 127.100.0.0?)")]
    [InlineData("100.64.0.0/24", "127.100.0.128", "has bits set in the host part")]
    [InlineData("100.64.0.0/16", "127.0.0.0", "contains 127.0.0.1")]
    [InlineData("100.64.0.0/28", "127.0.0.0", "contains 127.0.0.1")]
    public void Bad_plans_are_refused(string network, string imageBase, string reason)
    {
        var cidr = IPv4Cidr.Parse(network);
        var image = IPv4.Parse(imageBase);
        Assert.False(VirtualNetwork.IsValid(cidr, image, out var why));
        Assert.Contains(reason, why, StringComparison.Ordinal);
        Assert.Equal(why, Assert.Throws<UserException>(() => new VirtualNetwork(cidr, image)).Message);
    }

    [Fact]
    public void Image_next_to_loopback_address_is_allowed()
    {
        // 127.0.0.16/28 holds no 127.0.0.1.
        var plan = new VirtualNetwork(IPv4Cidr.Parse("100.64.0.0/28"), IPv4.Parse("127.0.0.16"));
        Assert.Equal("127.0.0.18", IPv4.Format(plan.ToImage(IPv4.Parse("100.64.0.2"))));
    }
}
