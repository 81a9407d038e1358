using System.Buffers.Binary;
using Isthmus.Core.Addressing;
using Isthmus.Core.Naming;
using Isthmus.Core.Native;
using static Isthmus.Interpose.Seccomp.SeccompNative;

namespace Isthmus.Interpose.Seccomp;

/// <summary>
/// Names for static programs. Their resolvers (Go's, busybox's, static glibc's) are code inside the
/// program, not libc calls the shim could hook; what they do is send UDP queries to the name servers of
/// resolv.conf. Those queries go to the agent's DNS responder instead, which answers the cluster's
/// names and forwards the rest; the program sees the name server it asked as the peer and the source.
/// </summary>
public sealed unsafe partial class SocketCallHandlers
{
    /// <summary>A resolv.conf name server's DNS port, and an agent that serves DNS.</summary>
    private bool IsNameServer(uint ip, ushort port) =>
        Config.DnsPort != 0 && port == ResolverConfig.Port && Config.NameServers.Contains(ip);

    private bool IsDnsResponder(uint ip, ushort port) => Config.DnsPort != 0 && ip == Config.DnsIp && port == Config.DnsPort;

    /// <summary>connect(UDP, name server:53): the kernel connects the socket to the agent's responder instead. TCP (after a truncated answer) stays native.</summary>
    private void ConnectNameServer(TrappedCall call, int fd, int family, uint ip, ushort port)
    {
        using var dup = call.TryGetFd(fd, out _);
        if (dup is null || !IsOverlayDatagramSocket(dup.Fd, out _))
        {
            call.Continue();
            return;
        }

        RememberPeer(Cookie(dup.Fd), ip, port);
        Log($"connect udp tid={call.Tid} name server {IPv4.Format(ip)}:{port} -> agent DNS");
        Span<byte> target = stackalloc byte[SockAddr.MaxLength];
        var tlen = SockAddr.Make(target, family, Config.DnsIp, Config.DnsPort);
        call.Complete(ConnectTo(dup.Fd, target[..tlen]));
    }

    /// <summary>sendto(UDP, name server:53): sent on behalf to the agent's responder; the server is remembered for the answer's source.</summary>
    private void SendToNameServer(TrappedCall call, int fd, int family, uint ip, ushort port)
    {
        using var dup = call.TryGetFd(fd, out _);
        if (dup is null || !IsOverlayDatagramSocket(dup.Fd, out _))
        {
            call.Continue();
            return;
        }

        var length = call.Args[2];
        if (length > MaxDatagram)
        {
            call.Fail(EMSGSIZE);
            return;
        }

        var payload = new byte[(int)length];
        if (!call.TryRead(call.Args[1], payload) && length > 0)
        {
            call.Fail(EFAULT);
            return;
        }

        var cookie = Cookie(dup.Fd);
        if (!_peers.TryGetValue(cookie, out var known) || known != (ip, port))
        {
            RememberPeer(cookie, ip, port);
        }

        Span<byte> target = stackalloc byte[SockAddr.MaxLength];
        var tlen = SockAddr.Make(target, family, Config.DnsIp, Config.DnsPort);
        fixed (byte* t = target)
        fixed (byte* p = payload)
        {
            var iov = new IoVec { Base = (nint)p, Length = (nuint)payload.Length };
            var msg = new MsgHdr { Name = (nint)t, NameLength = (uint)tlen, Iov = (nint)(&iov), IovLength = 1 };
            var n = SeccompNative.SendMsg(dup.Fd, &msg, (int)call.Args[3]);
            call.Complete(n >= 0 ? n : -LastError);
        }
    }

    /// <summary>An answer from the responder shows the name server the program asked (the first one if it is not known).</summary>
    private void ShowNameServer(int fd, Span<byte> address)
    {
        var (ip, port) = _peers.TryGetValue(Cookie(fd), out var known) ? known : (Config.NameServers[0], ResolverConfig.Port);
        SockAddr.SetV4(address, ip);
        BinaryPrimitives.WriteUInt16BigEndian(address[2..], port);
    }
}
