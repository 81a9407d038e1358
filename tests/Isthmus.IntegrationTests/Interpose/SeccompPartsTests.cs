using Isthmus.Core;
using Isthmus.Interpose;
using Isthmus.Interpose.Seccomp;
using Xunit;

namespace Isthmus.IntegrationTests.Interpose;

/// <summary>The seccomp mode's pure parts: the auto rule's ELF inspection, the kernel version check, sockaddr codec.</summary>
public sealed class SeccompPartsTests
{
    [Fact]
    public void StaticElf_IsSeccomp_DynamicElf_AndScripts_ArePreload()
    {
        var busybox = ProgramKind.Inspect("/bin/busybox");
        Assert.True(busybox.IsElf && busybox.Is64Bit && busybox.IsStatic && !busybox.IsGo, "busybox-static must be a static 64-bit ELF");
        Assert.Equal(InterposeMode.Seccomp, busybox.ChooseAuto("/bin/busybox"));

        var python = ProgramKind.Inspect("/usr/bin/python3");
        Assert.True(python.IsElf && !python.IsStatic && !python.IsGo);
        Assert.Equal(InterposeMode.Preload, python.ChooseAuto("/usr/bin/python3"));

        var dir = Directory.CreateTempSubdirectory("isthmus-kind-").FullName;
        try
        {
            var script = Path.Combine(dir, "script.sh");
            File.WriteAllText(script, "#!/bin/sh\necho hi\n");
            var kind = ProgramKind.Inspect(script);
            Assert.False(kind.IsElf);
            Assert.Equal(InterposeMode.Preload, kind.ChooseAuto(script));

            File.SetUnixFileMode(script, UnixFileMode.SetGroup | UnixFileMode.UserRead | UnixFileMode.UserExecute);
            var setgid = ProgramKind.Inspect(script);
            var refusal = Assert.Throws<UserException>(() => setgid.ChooseAuto(script));
            Assert.Contains("setuid/setgid", refusal.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("6.18.44-fc-v657", 6, 18)]
    [InlineData("5.14.0-427.el9.x86_64", 5, 14)]
    [InlineData("5.4.0-150-generic", 5, 4)]
    public void KernelRelease_Parses(string release, int major, int minor)
    {
        Assert.Equal(new Version(major, minor), KernelSupport.ParseVersion(release));
        Assert.Equal(major > 5 || minor >= 14, KernelSupport.ParseVersion(release) >= KernelSupport.Minimum);
    }

    [Fact]
    public void SockAddr_V4AndV4Mapped_RoundTrip()
    {
        Span<byte> sa = stackalloc byte[SockAddr.MaxLength];
        var len = SockAddr.Make(sa, SeccompNative.AfInet6, 0x64400102, 7001);
        Assert.Equal(SockAddr.Inet6Length, len);
        Assert.True(SockAddr.TryGetV4(sa[..len], out var ip, out var port));
        Assert.Equal((0x64400102u, (ushort)7001), (ip, port));
        Assert.False(SockAddr.TryGetV4(sa[..(SockAddr.Inet6MinLength - 1)], out _, out _));
        SockAddr.SetV4(sa[..len], 0x7F640102);
        Assert.True(SockAddr.TryGetV4(sa[..len], out ip, out _));
        Assert.Equal(0x7F640102u, ip);

        len = SockAddr.Make(sa, SeccompNative.AfInet, 0, 0);
        Assert.True(SockAddr.IsUnspecified(sa[..len], out var portZero) && portZero);
        sa[8] = 0x20; // a real IPv6 address is not v4-mapped
        sa[0] = SeccompNative.AfInet6;
        Assert.False(SockAddr.TryGetV4(sa[..SockAddr.Inet6Length], out _, out _));
    }
}
