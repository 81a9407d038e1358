using System.Net;
using System.Security.Cryptography;
using Isthmus.Core.Addressing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Router.Tests;

public sealed class NodeRegistryTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("isthmus-registry-").FullName;
    private static readonly IPv4Cidr Subnet = IPv4Cidr.Parse("100.64.1.0/29"); // nodes .2 .. .6
    private static readonly IPEndPoint Data = new(IPAddress.Parse("192.0.2.10"), 5000);

    private NodeRegistry NewRegistry() => new(_state, Subnet, NullLogger.Instance);

    private static byte[] Key() => RandomNumberGenerator.GetBytes(65);

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public void VipsAreAllocatedInOrder_AfterTheRouterAddress()
    {
        var registry = NewRegistry();
        Assert.Equal("100.64.1.1", IPv4.Format(registry.RouterVip));
        Assert.Equal("100.64.1.2", IPv4.Format(registry.Enrol("a1", Key(), Data, null).Session!.Vip));
        Assert.Equal("100.64.1.3", IPv4.Format(registry.Enrol("a2", Key(), Data, null).Session!.Vip));
    }

    [Fact]
    public void SameNameAndKey_GetsTheSameVipAgain_EvenAfterARestartOfTheRouter()
    {
        var key = Key();
        var registry = NewRegistry();
        registry.Enrol("x", Key(), Data, null);
        var first = registry.Enrol("a1", key, Data, null).Session!;
        registry.End(first, "test");
        var again = registry.Enrol("a1", key, Data, null).Session!;
        Assert.Equal(first.Vip, again.Vip);
        Assert.NotEqual(first.Id, again.Id);
        Assert.NotEqual(first.Key, again.Key);

        registry.End(again, "test");
        var restarted = NewRegistry(); // reads the persisted bindings
        Assert.Equal(first.Vip, restarted.Enrol("a1", key, Data, null).Session!.Vip);
    }

    [Fact]
    public void AnotherKeyForABoundName_IsRefused()
    {
        var registry = NewRegistry();
        var owner = registry.Enrol("a1", Key(), Data, null).Session!;
        registry.End(owner, "test");
        var outcome = registry.Enrol("a1", Key(), Data, null);
        Assert.Null(outcome.Session);
        Assert.Equal("name-taken", outcome.Code);
    }

    [Fact]
    public void ALiveName_CannotBeEnrolledTwice()
    {
        var key = Key();
        var registry = NewRegistry();
        registry.Enrol("a1", key, Data, null);
        var outcome = registry.Enrol("a1", key, Data, null);
        Assert.Equal("name-in-use", outcome.Code);
        Assert.Contains("already enrolled", outcome.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RequestedVips_AreCheckedAgainstOwnersAndTheSubnet()
    {
        var registry = NewRegistry();
        var owner = registry.Enrol("a1", Key(), Data, null).Session!;
        Assert.Equal("vip-taken", registry.Enrol("b9", Key(), Data, owner.Vip).Code);
        Assert.Equal("vip-invalid", registry.Enrol("b8", Key(), Data, IPv4.Parse("100.64.1.1")).Code);
        Assert.Equal("vip-invalid", registry.Enrol("b7", Key(), Data, IPv4.Parse("100.64.1.7")).Code);
        Assert.Equal("vip-invalid", registry.Enrol("b6", Key(), Data, IPv4.Parse("100.64.2.9")).Code);
        Assert.Equal("100.64.1.5", IPv4.Format(registry.Enrol("b5", Key(), Data, IPv4.Parse("100.64.1.5")).Session!.Vip));
    }

    [Fact]
    public void AFullSubnet_IsRefusedWithAReason()
    {
        var registry = NewRegistry();
        for (var i = 0; i < 5; i++)
        {
            Assert.NotNull(registry.Enrol("n" + i, Key(), Data, null).Session);
        }

        var outcome = registry.Enrol("n9", Key(), Data, null);
        Assert.Equal("subnet-full", outcome.Code);
    }

    [Fact]
    public void LiveLookups_FollowEnrolAndEnd()
    {
        var registry = NewRegistry();
        var session = registry.Enrol("a1", Key(), Data, null).Session!;
        Assert.True(registry.TryGetLive(session.Vip, out var byVip));
        Assert.Same(session, byVip);
        Assert.True(registry.TryGetSession(session.Id, out _));
        registry.End(session, "test");
        Assert.False(registry.TryGetLive(session.Vip, out _));
        Assert.False(registry.TryGetSession(session.Id, out _));
        Assert.Equal(0, registry.LiveCount);
    }

    [Fact]
    public void ADamagedStateFile_IsAClearError()
    {
        File.WriteAllText(Path.Combine(_state, "nodes.json"), "{ not json");
        var error = Assert.Throws<Core.UserException>(NewRegistry);
        Assert.Contains("nodes.json is damaged", error.Message, StringComparison.Ordinal);
    }
}
