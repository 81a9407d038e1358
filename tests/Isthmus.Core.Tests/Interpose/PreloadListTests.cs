using Isthmus.Interpose;
using Xunit;

namespace Isthmus.Core.Tests.Interpose;

public sealed class PreloadListTests
{
    private const string Shim = "/site/bin/native/libisthmus_preload.so";

    [Fact]
    public void Empty_OnlyTheShim()
    {
        Assert.Equal(Shim, InterposedEnvironment.PreloadList(Shim, null));
        Assert.Equal(Shim, InterposedEnvironment.PreloadList(Shim, ""));
    }

    [Fact]
    public void OtherLibraries_KeptAfterTheShim()
    {
        Assert.Equal(Shim + ":/usr/lib/libfoo.so:libbar.so", InterposedEnvironment.PreloadList(Shim, "/usr/lib/libfoo.so libbar.so"));
    }

    [Fact]
    public void AnotherCopyOfTheShim_Replaced()
    {
        Assert.Equal(Shim + ":/usr/lib/libfoo.so",
            InterposedEnvironment.PreloadList(Shim, "/home/me/isthmus/native/libisthmus_preload.so:/usr/lib/libfoo.so"));
    }

    [Fact]
    public void TheSameShim_NotRepeated()
    {
        Assert.Equal(Shim, InterposedEnvironment.PreloadList(Shim, Shim + ":" + Shim));
    }
}
