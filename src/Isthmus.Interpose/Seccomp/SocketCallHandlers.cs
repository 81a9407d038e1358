using System.Buffers.Binary;
using System.Collections.Concurrent;
using Isthmus.Core.Addressing;
using Isthmus.Core.Native;
using Isthmus.Core.Wire;
using static Isthmus.Interpose.Seccomp.SeccompNative;

namespace Isthmus.Interpose.Seccomp;

/// <summary>
/// The supervisor's answers to trapped socket calls. Behaviour is the preload shim's, call by call
/// (native/preload/hooks_connect.c and hooks_names.c; docs/ARCHITECTURE.md, "seccomp mode"): anything that
/// is not about a VIP or an image address is answered CONTINUE so the kernel runs the call as the program
/// made it. Overlay calls are made on behalf of the program on a pidfd_getfd duplicate of its socket: the
/// duplicate shares the open file description, so O_NONBLOCK, EINPROGRESS, POLLOUT and SO_ERROR stay the
/// kernel's own, and the program's memory is only written where the kernel would write (getsockname's and
/// accept's result buffers), never its input sockaddr.
/// </summary>
public sealed unsafe partial class SocketCallHandlers(OverlayConfig config, bool debug)
{
    private const int PeerTableLimit = 16384;
    private const int AcceptPollMs = 200;

    // The VIP:port each socket was connected to through the agent, by SO_COOKIE (never reused), for
    // getpeername. Shared by the whole supervised tree, so it survives fork and exec. Bounded: on a miss the
    // agent's PEER answer is used, as the shim does after exec.
    private readonly ConcurrentDictionary<ulong, (uint Ip, ushort Port)> _peers = new();
    private readonly ConcurrentQueue<ulong> _peerOrder = new();

    // Connections accepted on behalf of a call that went away before the fd could be handed over (the thread
    // was killed): given to the listener's next accept rather than dropped. By listener cookie; bounded.
    private readonly ConcurrentDictionary<ulong, ConcurrentQueue<(SafeFd Fd, byte[] Address)>> _orphans = new();

    private OverlayConfig Config => config;

    /// <summary>Whether a call may block for long (blocking accept, connect through the agent), so the dispatcher gives it a thread of its own.</summary>
    public static bool MayBlock(TrappedSyscall syscall) => syscall is TrappedSyscall.Connect or TrappedSyscall.Accept or TrappedSyscall.Accept4;

    public void Handle(TrappedCall call)
    {
        try
        {
            switch (call.Syscall)
            {
                case TrappedSyscall.Connect:
                    Connect(call);
                    break;
                case TrappedSyscall.Bind:
                    Bind(call);
                    break;
                case TrappedSyscall.GetSockName:
                    GetName(call, peer: false);
                    break;
                case TrappedSyscall.GetPeerName:
                    GetName(call, peer: true);
                    break;
                case TrappedSyscall.Accept:
                    Accept(call, (int)call.Args[0], call.Args[1], call.Args[2], 0, accept4: false);
                    break;
                case TrappedSyscall.Accept4:
                    Accept(call, (int)call.Args[0], call.Args[1], call.Args[2], (int)call.Args[3], accept4: true);
                    break;
                case TrappedSyscall.SendTo:
                    SendTo(call);
                    break;
                case TrappedSyscall.RecvFrom:
                    RecvFrom(call);
                    break;
                case TrappedSyscall.SendMsg:
                    SendMsg(call);
                    break;
                case TrappedSyscall.SendMmsg:
                    SendMmsg(call);
                    break;
                case TrappedSyscall.RecvMsg:
                    RecvMsg(call);
                    break;
                case TrappedSyscall.RecvMmsg:
                    RecvMmsg(call);
                    break;
                default:
                    call.Continue();
                    break;
            }
        }
        catch (Exception e)
        {
            // A bug here must not leave the program's thread waiting forever.
            Console.Error.WriteLine($"isthmus: seccomp supervisor: {call.Syscall} of thread {call.Tid} failed: {e.Message}");
            call.Fail(ENETUNREACH);
        }
        finally
        {
            if (!call.Answered && !call.Deferred)
            {
                call.Continue();
            }
        }
    }

    private void Log(string message)
    {
        if (debug)
        {
            Console.Error.WriteLine("isthmus-seccomp: " + message);
        }
    }

    /// <summary>Reads a sockaddr argument (at most sizeof(sockaddr_storage)); false if it cannot be read.</summary>
    private static bool ReadAddress(TrappedCall call, ulong address, ulong length, Span<byte> buffer, out int read)
    {
        read = 0;
        if (length is < 2 or > SockAddr.MaxLength)
        {
            return false;
        }

        read = (int)length;
        return call.TryRead(address, buffer[..read]);
    }

    /// <summary>
    /// The program's socket could not be duplicated. EBADF and friends are the program's own mistake and the
    /// kernel should say so (CONTINUE); a program we may not inspect must not reach the real network with a
    /// VIP either, so its overlay call fails as an unroutable destination does.
    /// </summary>
    private static void CannotInspect(TrappedCall call, int error)
    {
        if (error is EPERM or EACCES)
        {
            Console.Error.WriteLine($"isthmus: thread {call.Tid} cannot be supervised (not dumpable, or ptrace restrictions): its {call.Syscall} of a virtual address fails with ENETUNREACH");
            call.Fail(ENETUNREACH);
        }
        else
        {
            call.Continue();
        }
    }

    // ---- connect ---------------------------------------------------------------------------------------

    private void Connect(TrappedCall call)
    {
        var fd = (int)call.Args[0];
        Span<byte> sa = stackalloc byte[SockAddr.MaxLength];
        if (!ReadAddress(call, call.Args[1], call.Args[2], sa, out var len) || !SockAddr.TryGetV4(sa[..len], out var dstIp, out var dstPort)
            || !(Config.Network.IsVirtual(dstIp) || IsNameServer(dstIp, dstPort)) || !call.IsValid())
        {
            call.Continue();
            return;
        }

        var family = SockAddr.Family(sa);
        if (!Config.Network.IsVirtual(dstIp))
        {
            ConnectNameServer(call, fd, family, dstIp, dstPort);
            return;
        }

        using var dup = call.TryGetFd(fd, out var error);
        if (dup is null)
        {
            CannotInspect(call, error);
            return;
        }

        if (!IsOverlayStreamSocket(dup.Fd, family))
        {
            if (IsOverlayDatagramSocket(dup.Fd, out _))
            {
                ConnectDatagram(call, dup.Fd, family, dstIp, dstPort);
            }
            else
            {
                call.Continue(); // V6ONLY, not a socket: the kernel's own result
            }

            return;
        }

        Span<byte> target = stackalloc byte[SockAddr.MaxLength];
        int tlen;
        if (!TcpClosed(dup.Fd))
        {
            // Connecting again while connecting or connected (also a restarted call after a signal): the kernel
            // answers EALREADY/EISCONN, or waits, without a second registration.
            tlen = SockAddr.Make(target, family, Config.DataIp, Config.DataPort);
            call.Complete(ConnectTo(dup.Fd, target[..tlen]));
            return;
        }

        Span<byte> local = stackalloc byte[SockAddr.MaxLength];
        var bound = BindIfUnbound(dup.Fd, family, reuse: true, local, out var llen);
        if (bound != 0)
        {
            call.Fail(bound);
            return;
        }

        if (dstIp == Config.OwnVip)
        {
            Log($"connect tid={call.Tid} fd={fd} {IPv4.Format(dstIp)}:{dstPort} -> own image");
            tlen = SockAddr.Make(target, family, Config.Network.ToImage(dstIp), dstPort);
            call.Complete(ConnectTo(dup.Fd, target[..tlen]));
            return;
        }

        if (!RegistrationSource(local[..llen], out var srcIp, out var srcPort))
        {
            Log($"connect tid={call.Tid} fd={fd}: local address cannot be registered -> ENETUNREACH");
            call.Fail(ENETUNREACH);
            return;
        }

        var nonBlocking = (Fcntl(dup.Fd, FGetFl, 0) & ONonBlock) != 0;
        var reply = Config.Ask(new ShimRequest(ShimOp.Connect, nonBlocking, new VirtualEndpoint(dstIp, dstPort), srcIp, srcPort), out var rpcError);
        Log($"connect tid={call.Tid} fd={fd} {IPv4.Format(dstIp)}:{dstPort} from {IPv4.Format(srcIp)}:{srcPort}{(nonBlocking ? " (non-blocking)" : "")} -> agent error {reply?.Error ?? rpcError}");
        if (reply is null)
        {
            call.Fail(rpcError);
            return;
        }

        if (reply.Value.Error != 0)
        {
            call.Fail(reply.Value.Error);
            return;
        }

        // Recorded before the kernel connect so that no thread can see the socket connected and ask
        // getpeername before the entry exists.
        var cookie = Cookie(dup.Fd);
        RememberPeer(cookie, dstIp, dstPort);
        tlen = SockAddr.Make(target, family, Config.DataIp, Config.DataPort);
        var rc = ConnectTo(dup.Fd, target[..tlen]);
        if (rc < 0 && -rc is not (EINPROGRESS or EINTR or EALREADY or EISCONN) && cookie != 0)
        {
            _peers.TryRemove(cookie, out _);
        }

        call.Complete(rc);
    }

    private static long ConnectTo(int fd, ReadOnlySpan<byte> address)
    {
        fixed (byte* a = address)
        {
            return SeccompNative.Connect(fd, a, (uint)address.Length) == 0 ? 0 : -LastError;
        }
    }

    /// <summary>A TCP (or MPTCP) socket of <paramref name="family"/> that accepts v4-mapped addresses.</summary>
    private static bool IsOverlayStreamSocket(int fd, int family)
    {
        if (!TryGetIntOption(fd, SolSocket, SoDomain, out var domain) || domain != family)
        {
            return false;
        }

        if (!TryGetIntOption(fd, SolSocket, SoType, out var type) || (type & ~(SockNonBlock | SockCloexec)) != SockStream)
        {
            return false;
        }

        if (!TryGetIntOption(fd, SolSocket, SoProtocol, out var protocol) || protocol is not (IpProtoTcp or IpProtoMptcp))
        {
            return false;
        }

        return family != AfInet6 || (TryGetIntOption(fd, IpProtoIpv6, Ipv6V6Only, out var v6Only) && v6Only == 0);
    }

    private static bool TcpClosed(int fd)
    {
        // struct tcp_info starts with u8 tcpi_state; TCP_CLOSE = 7.
        Span<byte> info = stackalloc byte[256];
        uint len = (uint)info.Length;
        fixed (byte* p = info)
        {
            if (GetSockOpt(fd, IpProtoTcp, TcpInfo, p, &len) < 0 || len < 1)
            {
                return true;
            }
        }

        return info[0] == 7;
    }

    /// <summary>
    /// Gives an unbound socket the local address image(own VIP):0 (SO_REUSEADDR, as the shim does), and
    /// returns its local address. 0 or a positive errno.
    /// </summary>
    private int BindIfUnbound(int fd, int family, bool reuse, Span<byte> local, out int llen)
    {
        llen = 0;
        uint len = SockAddr.MaxLength;
        fixed (byte* l = local)
        {
            if (GetSockName(fd, l, &len) < 0)
            {
                return LastError;
            }

            llen = (int)len;
            if (!SockAddr.IsUnspecified(local[..llen], out var portZero) || !portZero)
            {
                return 0;
            }

            var one = 1;
            if (reuse)
            {
                _ = SetSockOpt(fd, SolSocket, SoReuseAddr, &one, sizeof(int));
            }

            Span<byte> want = stackalloc byte[SockAddr.MaxLength];
            var wlen = SockAddr.Make(want, family, Config.Network.ToImage(Config.OwnVip), 0);
            fixed (byte* w = want)
            {
                if (SeccompNative.Bind(fd, w, (uint)wlen) < 0)
                {
                    var e = LastError;
                    // A native connect says EADDRNOTAVAIL when the ephemeral ports run out.
                    return e == EADDRINUSE ? EADDRNOTAVAIL : e;
                }
            }

            len = SockAddr.MaxLength;
            if (GetSockName(fd, l, &len) < 0)
            {
                return LastError;
            }

            llen = (int)len;
            return 0;
        }
    }

    private static bool RegistrationSource(ReadOnlySpan<byte> local, out uint srcIp, out ushort srcPort)
    {
        if (SockAddr.IsUnspecified(local, out _))
        {
            srcIp = 0x7F000001; // a wildcard-bound socket connects to the loopback data endpoint from 127.0.0.1
            srcPort = BinaryPrimitives.ReadUInt16BigEndian(local[2..]);
        }
        else if (!SockAddr.TryGetV4(local, out srcIp, out srcPort))
        {
            return false;
        }

        return srcPort != 0;
    }

    private void RememberPeer(ulong cookie, uint ip, ushort port)
    {
        if (cookie == 0)
        {
            return;
        }

        _peers[cookie] = (ip, port);
        _peerOrder.Enqueue(cookie);
        for (var i = 0; i < 4 && _peers.Count > PeerTableLimit && _peerOrder.TryDequeue(out var old); i++)
        {
            _peers.TryRemove(old, out _);
        }
    }

    // ---- bind --------------------------------------------------------------------------------------------

    private void Bind(TrappedCall call)
    {
        var fd = (int)call.Args[0];
        Span<byte> sa = stackalloc byte[SockAddr.MaxLength];
        if (!ReadAddress(call, call.Args[1], call.Args[2], sa, out var len))
        {
            call.Continue();
            return;
        }

        if (SockAddr.IsUnspecified(sa[..len], out var portZero))
        {
            if (!portZero)
            {
                SharePortWithProxies(call, fd);
            }

            call.Continue();
            return;
        }

        if (!SockAddr.TryGetV4(sa[..len], out var ip, out var port) || !Config.Network.IsVirtual(ip) || !call.IsValid())
        {
            call.Continue();
            return;
        }

        var family = SockAddr.Family(sa);
        using var dup = call.TryGetFd(fd, out var error);
        if (dup is null)
        {
            CannotInspect(call, error);
            return;
        }

        if (family == AfInet6 && (!TryGetIntOption(dup.Fd, IpProtoIpv6, Ipv6V6Only, out var v6Only) || v6Only != 0))
        {
            call.Continue(); // a V6ONLY socket refuses v4-mapped addresses natively
            return;
        }

        if (ip != Config.OwnVip)
        {
            Log($"bind tid={call.Tid} fd={fd} {IPv4.Format(ip)}:{port} -> EADDRNOTAVAIL");
            call.Fail(EADDRNOTAVAIL);
            return;
        }

        Log($"bind tid={call.Tid} fd={fd} {IPv4.Format(ip)}:{port} -> own image");
        Span<byte> target = stackalloc byte[SockAddr.MaxLength];
        var tlen = SockAddr.Make(target, family, Config.Network.ToImage(ip), port);
        fixed (byte* t = target)
        {
            call.Complete(SeccompNative.Bind(dup.Fd, t, (uint)tlen) == 0 ? 0 : -LastError);
        }
    }

    /// <summary>
    /// A UDP socket bound to the wildcard with a fixed port also covers the image addresses on that port, where
    /// the agent keeps its proxies: both sides set SO_REUSEADDR so neither bind fails for the other (the kernel
    /// still delivers to the most specific match). As the shim's share_port_with_proxies.
    /// </summary>
    private void SharePortWithProxies(TrappedCall call, int fd)
    {
        using var dup = call.TryGetFd(fd, out _);
        if (dup is not null && TryGetIntOption(dup.Fd, SolSocket, SoProtocol, out var protocol) && protocol is IpProtoUdp or IpProtoUdpLite)
        {
            var one = 1;
            _ = SetSockOpt(dup.Fd, SolSocket, SoReuseAddr, &one, sizeof(int));
            Log($"bind tid={call.Tid} fd={fd}: UDP wildcard with a port, SO_REUSEADDR beside the agent's proxies");
        }
    }

    // ---- getsockname / getpeername ----------------------------------------------------------------------

    private void GetName(TrappedCall call, bool peer)
    {
        var fd = (int)call.Args[0];
        var addrPtr = call.Args[1];
        var lenPtr = call.Args[2];
        Span<byte> lenBytes = stackalloc byte[4];
        // NULL pointers and negative lengths are the program's mistake: the kernel reports them.
        if (addrPtr == 0 || lenPtr == 0 || !call.TryRead(lenPtr, lenBytes) || BinaryPrimitives.ReadInt32LittleEndian(lenBytes) < 0)
        {
            call.Continue();
            return;
        }

        using var dup = call.TryGetFd(fd, out var error);
        if (dup is null)
        {
            call.Continue(); // also a program we may not inspect: an address is reported, nothing is reached
            return;
        }

        Span<byte> ss = stackalloc byte[SockAddr.MaxLength];
        uint sl = SockAddr.MaxLength;
        fixed (byte* s = ss)
        {
            if ((peer ? GetPeerName(dup.Fd, s, &sl) : GetSockName(dup.Fd, s, &sl)) < 0)
            {
                call.Fail(LastError);
                return;
            }
        }

        var result = ss[..(int)Math.Min(sl, SockAddr.MaxLength)];
        if (!SockAddr.TryGetV4(result, out var ip, out var port))
        {
            call.Continue();
            return;
        }

        if (peer && ip == Config.DataIp && port == Config.DataPort)
        {
            if (!OverlayPeer(dup.Fd, result, call))
            {
                call.Continue(); // nobody knows: the real peer, as the shim does
                return;
            }
        }
        else if (Config.Network.IsImage(ip))
        {
            SockAddr.SetV4(result, Config.Network.FromImage(ip));
        }
        else if (peer && IsDnsResponder(ip, port))
        {
            ShowNameServer(dup.Fd, result);
        }
        else if (!peer && ip == 0x7F000001 && PeerIsImage(dup.Fd))
        {
            // A wildcard-bound socket connected to an image got the kernel's route source, 127.0.0.1 (connected
            // UDP servers such as iperf3 -u); towards its overlay peer it is this node (the shim's loopback_to_own_vip).
            SockAddr.SetV4(result, Config.OwnVip);
        }
        else
        {
            call.Continue();
            return;
        }

        CopyOut(call, addrPtr, lenPtr, BinaryPrimitives.ReadInt32LittleEndian(lenBytes), result);
    }

    private bool PeerIsImage(int fd)
    {
        Span<byte> pa = stackalloc byte[SockAddr.MaxLength];
        uint pl = SockAddr.MaxLength;
        fixed (byte* p = pa)
        {
            return GetPeerName(fd, p, &pl) == 0 && SockAddr.TryGetV4(pa[..(int)Math.Min(pl, SockAddr.MaxLength)], out var ip, out _) && Config.Network.IsImage(ip);
        }
    }

    /// <summary>The kernel's way: copy at most *len bytes, report the full length; then the call returns 0.</summary>
    private static void CopyOut(TrappedCall call, ulong addrPtr, ulong lenPtr, int callerLength, ReadOnlySpan<byte> result)
    {
        Span<byte> lenBytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(lenBytes, result.Length);
        if (!call.TryWrite(addrPtr, result[..Math.Min(callerLength, result.Length)]) || !call.TryWrite(lenPtr, lenBytes))
        {
            call.Fail(EFAULT);
            return;
        }

        if (call.IsValid())
        {
            call.Return(0);
        }
    }

    private bool OverlayPeer(int fd, Span<byte> result, TrappedCall call)
    {
        var cookie = Cookie(fd);
        if (cookie != 0 && _peers.TryGetValue(cookie, out var known))
        {
            // Same family, hence the same length, as the kernel's answer.
            SockAddr.Make(result, SockAddr.Family(result), known.Ip, known.Port);
            return true;
        }

        Span<byte> local = stackalloc byte[SockAddr.MaxLength];
        uint ll = SockAddr.MaxLength;
        fixed (byte* l = local)
        {
            if (GetSockName(fd, l, &ll) < 0 || !SockAddr.TryGetV4(local[..(int)ll], out var srcIp, out var srcPort))
            {
                return false;
            }

            var reply = Config.Ask(new ShimRequest(ShimOp.Peer, false, default, srcIp, srcPort), out _);
            Log($"getpeername tid={call.Tid}: not in the peer table; agent says {reply?.Error.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}");
            if (reply is not { Error: 0 } r)
            {
                return false;
            }

            SockAddr.Make(result, SockAddr.Family(result), r.Endpoint.Address, r.Endpoint.Port);
            return true;
        }
    }

    // ---- accept / accept4 -------------------------------------------------------------------------------

    /// <summary>
    /// There is no exit hook in seccomp user notification, so an accept whose result must be translated is
    /// done on behalf of the program: accept4 on the duplicate listener, the translated address written to
    /// the program's buffer, and the new socket installed with ADDFD|SEND (flags as asked). accept with a NULL
    /// address has nothing to translate and runs natively.
    /// </summary>
    private void Accept(TrappedCall call, int fd, ulong addrPtr, ulong lenPtr, int flags, bool accept4)
    {
        Span<byte> lenBytes = stackalloc byte[4];
        if (addrPtr == 0 || (flags & ~(SockNonBlock | SockCloexec)) != 0 || lenPtr == 0 || !call.TryRead(lenPtr, lenBytes)
            || BinaryPrimitives.ReadInt32LittleEndian(lenBytes) < 0)
        {
            call.Continue();
            return;
        }

        var callerLength = BinaryPrimitives.ReadInt32LittleEndian(lenBytes);
        using var dup = call.TryGetFd(fd, out _);
        if (dup is null || !TryGetIntOption(dup.Fd, SolSocket, SoDomain, out var domain) || domain is not (AfInet or AfInet6)
            || !TryGetIntOption(dup.Fd, SolSocket, SoAcceptConn, out var listening) || listening == 0)
        {
            call.Continue(); // AF_UNIX, not listening, not a socket: nothing to translate, the kernel's answer
            return;
        }

        var listenerCookie = Cookie(dup.Fd);
        Span<byte> ss = stackalloc byte[SockAddr.MaxLength];
        SafeFd? accepted = null;
        var length = 0;
        if (listenerCookie != 0 && _orphans.TryGetValue(listenerCookie, out var queue) && queue.TryDequeue(out var orphan))
        {
            accepted = orphan.Fd;
            orphan.Address.CopyTo(ss);
            length = orphan.Address.Length;
        }

        var nonBlocking = (Fcntl(dup.Fd, FGetFl, 0) & ONonBlock) != 0;
        while (accepted is null)
        {
            if (!nonBlocking && !WaitReadable(call, dup.Fd, deadline: 0))
            {
                return; // answered (restart for a signal) or the call went away
            }

            uint sl = SockAddr.MaxLength;
            int cfd;
            fixed (byte* s = ss)
            {
                // Always CLOEXEC here (this process may spawn); the program's flag is applied by ADDFD.
                cfd = Accept4(dup.Fd, s, &sl, SockCloexec | (flags & SockNonBlock));
            }

            if (cfd >= 0)
            {
                accepted = new SafeFd(cfd);
                length = (int)Math.Min(sl, SockAddr.MaxLength);
                break;
            }

            var e = LastError;
            if (nonBlocking || e is not (EAGAIN or EINTR))
            {
                call.Fail(e);
                return;
            }
        }

        using (accepted)
        {
            var address = ss[..length];
            if (SockAddr.TryGetV4(address, out var ip, out _) && Config.Network.IsImage(ip))
            {
                SockAddr.SetV4(address, Config.Network.FromImage(ip));
            }

            Span<byte> outLen = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(outLen, length);
            if (!call.TryWrite(addrPtr, address[..Math.Min(callerLength, length)]) || !call.TryWrite(lenPtr, outLen))
            {
                call.Fail(EFAULT);
                return;
            }

            var newFd = call.AddFdAndReturn(accepted, (flags & SockCloexec) != 0);
            if (newFd == -ENOENT && listenerCookie != 0)
            {
                // The thread was killed after the connection was taken off the queue: keep it for the next accept.
                var q = _orphans.GetOrAdd(listenerCookie, _ => new ConcurrentQueue<(SafeFd, byte[])>());
                if (q.Count < 64)
                {
                    q.Enqueue((new SafeFd(Dup(accepted)), ss[..length].ToArray()));
                }
            }
            else if (newFd < 0 && newFd != -ENOENT)
            {
                call.Fail(-newFd);
            }

            Log($"{(accept4 ? "accept4" : "accept")} tid={call.Tid} fd={fd} -> {newFd}");
        }
    }

    private static int Dup(SafeFd fd) => Fcntl(fd.Fd, 1030 /* F_DUPFD_CLOEXEC */, 0);

    // ---- UDP -------------------------------------------------------------------------------------------------

    private static readonly long RouteLifetime = 30 * System.Diagnostics.Stopwatch.Frequency;
    private readonly ConcurrentDictionary<(uint Ip, ushort Port), long> _routes = new();

    /// <summary>
    /// Makes sure the agent has its UDP proxy for a remote VIP:port (op UDP_ROUTE), asking again when the
    /// answer is 30 s old, as the shim's udp_route.c does. 0 or the agent's errno.
    /// </summary>
    private int EnsureRoute(uint ip, ushort port)
    {
        if (ip == Config.OwnVip)
        {
            return 0;
        }

        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_routes.TryGetValue((ip, port), out var when) && now - when < RouteLifetime)
        {
            return 0;
        }

        var reply = Config.Ask(new ShimRequest(ShimOp.UdpRoute, false, new VirtualEndpoint(ip, port), 0, 0), out var rpcError);
        var error = reply?.Error ?? rpcError;
        if (error == 0)
        {
            if (_routes.Count > 4096)
            {
                _routes.Clear();
            }

            _routes[(ip, port)] = now;
        }

        return error;
    }

    /// <summary>A UDP (or UDP-Lite) socket of AF_INET, or AF_INET6 accepting v4-mapped addresses; <paramref name="wildcard"/>: bound to the wildcard or not bound.</summary>
    private static bool IsOverlayDatagramSocket(int fd, out bool wildcard)
    {
        wildcard = false;
        if (!TryGetIntOption(fd, SolSocket, SoProtocol, out var protocol) || protocol is not (IpProtoUdp or IpProtoUdpLite))
        {
            return false;
        }

        Span<byte> local = stackalloc byte[SockAddr.MaxLength];
        uint len = SockAddr.MaxLength;
        fixed (byte* l = local)
        {
            if (GetSockName(fd, l, &len) < 0)
            {
                return false;
            }
        }

        var family = SockAddr.Family(local);
        if (family is not (AfInet or AfInet6)
            || (family == AfInet6 && (!TryGetIntOption(fd, IpProtoIpv6, Ipv6V6Only, out var v6Only) || v6Only != 0)))
        {
            return false;
        }

        wildcard = SockAddr.IsUnspecified(local[..(int)len], out _);
        return true;
    }

    /// <summary>connect(UDP, VIP): the route first, then image(own):0 if unbound, then the kernel connects to image(VIP):port.</summary>
    private void ConnectDatagram(TrappedCall call, int fd, int family, uint dstIp, ushort dstPort)
    {
        var error = EnsureRoute(dstIp, dstPort);
        if (error != 0)
        {
            Log($"connect udp tid={call.Tid} {IPv4.Format(dstIp)}:{dstPort} -> errno {error}");
            call.Fail(error);
            return;
        }

        Span<byte> local = stackalloc byte[SockAddr.MaxLength];
        uint ll = SockAddr.MaxLength;
        int localFamily;
        fixed (byte* l = local)
        {
            if (GetSockName(fd, l, &ll) < 0)
            {
                call.Fail(LastError);
                return;
            }

            localFamily = SockAddr.Family(local);
        }

        var bound = BindIfUnbound(fd, localFamily, reuse: false, local, out _);
        if (bound != 0)
        {
            call.Fail(bound);
            return;
        }

        Log($"connect udp tid={call.Tid} {IPv4.Format(dstIp)}:{dstPort} -> image");
        Span<byte> target = stackalloc byte[SockAddr.MaxLength];
        var tlen = SockAddr.Make(target, family, Config.Network.ToImage(dstIp), dstPort);
        call.Complete(ConnectTo(fd, target[..tlen]));
    }

    private const int MaxDatagram = 65535;

    /// <summary>
    /// sendto(UDP, VIP:port): sent on behalf to image(VIP):port, the payload copied out of the program, with an
    /// IP_PKTINFO source of image(own VIP) when the socket is bound to the wildcard or unbound (as the shim does).
    /// </summary>
    private void SendTo(TrappedCall call)
    {
        var fd = (int)call.Args[0];
        var length = call.Args[2];
        var flags = (int)call.Args[3];
        Span<byte> sa = stackalloc byte[SockAddr.MaxLength];
        if (!ReadAddress(call, call.Args[4], call.Args[5], sa, out var len) || !SockAddr.TryGetV4(sa[..len], out var ip, out var port)
            || !(Config.Network.IsVirtual(ip) || IsNameServer(ip, port)) || !call.IsValid())
        {
            call.Continue();
            return;
        }

        if (!Config.Network.IsVirtual(ip))
        {
            SendToNameServer(call, fd, SockAddr.Family(sa), ip, port);
            return;
        }

        using var dup = call.TryGetFd(fd, out var error);
        if (dup is null)
        {
            CannotInspect(call, error);
            return;
        }

        if (!IsOverlayDatagramSocket(dup.Fd, out var wildcard))
        {
            call.Continue(); // TCP (MSG_FASTOPEN) and the rest: the kernel's own answer
            return;
        }

        var routeError = EnsureRoute(ip, port);
        if (routeError != 0)
        {
            call.Fail(routeError);
            return;
        }

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

        if (wildcard && BindUnbound(dup.Fd))
        {
            wildcard = false;
        }

        Span<byte> target = stackalloc byte[SockAddr.MaxLength];
        var tlen = SockAddr.Make(target, SockAddr.Family(sa), Config.Network.ToImage(ip), port);
        // struct cmsghdr (16) + struct in_pktinfo (12), aligned: CMSG_SPACE = 32.
        Span<byte> control = stackalloc byte[32];
        control.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(control, 28); // cmsg_len = CMSG_LEN(12)
        BinaryPrimitives.WriteInt32LittleEndian(control[8..], IpProtoIp);
        BinaryPrimitives.WriteInt32LittleEndian(control[12..], IpPktInfo);
        BinaryPrimitives.WriteUInt32BigEndian(control[20..], Config.Network.ToImage(Config.OwnVip)); // ipi_spec_dst
        fixed (byte* t = target)
        fixed (byte* p = payload)
        fixed (byte* c = control)
        {
            var iov = new IoVec { Base = (nint)p, Length = (nuint)payload.Length };
            var msg = new MsgHdr
            {
                Name = (nint)t,
                NameLength = (uint)tlen,
                Iov = (nint)(&iov),
                IovLength = 1,
                Control = wildcard ? (nint)c : 0,
                ControlLength = wildcard ? (nuint)control.Length : 0,
            };
            var n = SeccompNative.SendMsg(dup.Fd, &msg, flags);
            call.Complete(n >= 0 ? n : -LastError);
        }
    }

    /// <summary>
    /// recvfrom(UDP, ..., addr, addrlen): the datagram is received on behalf so that its source, an image
    /// address (the agent's proxy for the remote sender, or a local program), reaches the program as the VIP.
    /// A blocking wait moves to a thread of its own and honours SO_RCVTIMEO and signals (see <see cref="WaitReadable"/>).
    /// </summary>
    private void RecvFrom(TrappedCall call)
    {
        var fd = (int)call.Args[0];
        var lenPtr = call.Args[5];
        Span<byte> lenBytes = stackalloc byte[4];
        if (lenPtr == 0 || !call.TryRead(lenPtr, lenBytes) || BinaryPrimitives.ReadInt32LittleEndian(lenBytes) < 0)
        {
            call.Continue();
            return;
        }

        var dup = call.TryGetFd(fd, out _);
        if (dup is null)
        {
            call.Continue();
            return;
        }

        if (!IsOverlayDatagramSocket(dup.Fd, out _))
        {
            dup.Dispose();
            call.Continue();
            return;
        }

        var flags = (int)call.Args[3];
        var nonBlocking = (flags & MsgDontWait) != 0 || (Fcntl(dup.Fd, FGetFl, 0) & ONonBlock) != 0;
        if (nonBlocking || IsReadable(dup.Fd))
        {
            using (dup)
            {
                ReceiveInto(call, dup.Fd, flags, nonBlocking, BinaryPrimitives.ReadInt32LittleEndian(lenBytes), deadline: 0);
            }

            return;
        }

        var deadline = ReceiveDeadline(dup.Fd);
        var callerLength = BinaryPrimitives.ReadInt32LittleEndian(lenBytes);
        call.Deferred = true;
        new Thread(() =>
        {
            using (dup)
            {
                try
                {
                    ReceiveInto(call, dup.Fd, flags, nonBlocking: false, callerLength, deadline);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"isthmus: seccomp supervisor: recvfrom of thread {call.Tid} failed: {e.Message}");
                }
                finally
                {
                    if (!call.Answered)
                    {
                        call.Continue();
                    }
                }
            }
        })
        { IsBackground = true, Name = "seccomp-recv" }.Start();
    }

    /// <summary>
    /// An AF_INET socket that was never bound gets image(own VIP):0 before its first datagram to a VIP (its
    /// source is then this node's address without IP_PKTINFO, and its port cannot collide with a proxy's).
    /// Dual-stack AF_INET6 sockets stay unbound and get IP_PKTINFO. True if the socket is now bound.
    /// </summary>
    private bool BindUnbound(int fd)
    {
        Span<byte> local = stackalloc byte[SockAddr.MaxLength];
        uint ll = SockAddr.MaxLength;
        fixed (byte* l = local)
        {
            if (GetSockName(fd, l, &ll) < 0 || SockAddr.Family(local) != AfInet || !SockAddr.IsUnspecified(local[..(int)ll], out var portZero) || !portZero)
            {
                return false;
            }
        }

        return BindIfUnbound(fd, AfInet, reuse: false, local, out _) == 0;
    }

    private static bool IsReadable(int fd)
    {
        var pfd = new PollFd { Fd = fd, Events = PollIn };
        return SeccompNative.Poll(&pfd, 1, 0) > 0;
    }

    /// <summary>Stopwatch timestamp at which SO_RCVTIMEO expires, or 0 for none.</summary>
    private static long ReceiveDeadline(int fd)
    {
        Span<long> tv = stackalloc long[2];
        uint len = 16;
        fixed (long* p = tv)
        {
            if (GetSockOpt(fd, SolSocket, SoRcvTimeo, p, &len) < 0 || (tv[0] == 0 && tv[1] == 0))
            {
                return 0;
            }
        }

        var ticks = (tv[0] * System.Diagnostics.Stopwatch.Frequency) + (tv[1] * System.Diagnostics.Stopwatch.Frequency / 1_000_000);
        return System.Diagnostics.Stopwatch.GetTimestamp() + ticks;
    }

    private void ReceiveInto(TrappedCall call, int fd, int flags, bool nonBlocking, int callerLength, long deadline)
    {
        var bufferLength = (int)Math.Min(call.Args[2], MaxDatagram + 1UL);
        var buffer = new byte[bufferLength];
        Span<byte> ss = stackalloc byte[SockAddr.MaxLength];
        nint n;
        uint sl;
        // Bounded by the call's life and SO_RCVTIMEO: WaitReadable returns false once either is over.
        while (true)
        {
            if (!nonBlocking && !WaitReadable(call, fd, deadline))
            {
                return;
            }

            sl = SockAddr.MaxLength;
            fixed (byte* b = buffer)
            fixed (byte* s = ss)
            {
                n = SeccompNative.RecvFrom(fd, b, (nuint)buffer.Length, flags | MsgDontWait, s, &sl);
            }

            if (n >= 0)
            {
                break;
            }

            var e = LastError;
            if (nonBlocking || e is not (EAGAIN or EINTR))
            {
                call.Fail(e);
                return;
            }
        }

        var length = (int)Math.Min(sl, SockAddr.MaxLength);
        var address = ss[..length];
        if (SockAddr.TryGetV4(address, out var ip, out var sourcePort) && Config.Network.IsImage(ip))
        {
            SockAddr.SetV4(address, Config.Network.FromImage(ip));
        }
        else if (IsDnsResponder(ip, sourcePort))
        {
            ShowNameServer(fd, address);
        }

        var copied = (int)Math.Min((ulong)n, (ulong)buffer.Length);
        Span<byte> outLen = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(outLen, length);
        if (!call.TryWrite(call.Args[1], buffer.AsSpan(0, copied)) || !call.TryWrite(call.Args[4], address[..Math.Min(callerLength, length)])
            || !call.TryWrite(call.Args[5], outLen))
        {
            call.Fail(EFAULT);
            return;
        }

        call.Return(n);
    }

    /// <summary>
    /// Waits until the blocking socket is readable (or <paramref name="deadline"/>, a Stopwatch timestamp, passes; 0: none). While waiting, checks that the call is still there and
    /// whether a signal the thread would take is pending; then the call is answered with ERESTARTSYS, which
    /// the kernel turns into a restart (SA_RESTART, or no handler) or EINTR, exactly as a native accept
    /// interrupted by that signal. False when the call has been answered or has gone away.
    /// </summary>
    private static bool WaitReadable(TrappedCall call, int fd, long deadline)
    {
        // Bounded by the call's life (every round checks that it is still waiting) and the deadline.
        while (true)
        {
            if (deadline != 0 && System.Diagnostics.Stopwatch.GetTimestamp() >= deadline)
            {
                call.Fail(EAGAIN); // SO_RCVTIMEO expired, as the kernel reports it
                return false;
            }

            var pfd = new PollFd { Fd = fd, Events = PollIn };
            var n = SeccompNative.Poll(&pfd, 1, AcceptPollMs);
            if (n > 0)
            {
                return true;
            }

            if (!call.IsValid())
            {
                return false;
            }

            if (ProcStatus.HasDeliverableSignal(call.Tid))
            {
                call.Fail(ERESTARTSYS);
                return false;
            }
        }
    }
}
