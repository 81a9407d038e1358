using System.Buffers.Binary;
using Isthmus.Core.Native;
using static Isthmus.Interpose.Seccomp.SeccompNative;

namespace Isthmus.Interpose.Seccomp;

/// <summary>
/// sendmsg, sendmmsg, recvmsg, recvmmsg on UDP sockets (trapped only with <c>isthmus run --seccomp-msg</c>:
/// the filter cannot look inside a msghdr, so trapping them stops every sendmsg of every program, TCP data
/// included). As in the shim (hooks_udp.c): destinations VIP → image (with the route made sure of and an
/// IP_PKTINFO source for wildcard sockets), sources and IP_PKTINFO addresses image → VIP. The program's
/// msghdr is read, never modified except where the kernel writes (msg_namelen, msg_controllen, msg_flags,
/// msg_len, and the buffers).
/// </summary>
public sealed unsafe partial class SocketCallHandlers
{
    private const int MsgHdrSize = 56; // struct msghdr on 64-bit Linux
    private const int MmsgHdrSize = 64; // struct mmsghdr: msghdr + unsigned msg_len, padded
    private const int MaxIov = 1024; // UIO_MAXIOV
    private const int MaxControl = 4096;
    private const int MsgWaitForOne = 0x10000;

    /// <summary>The fields of one struct msghdr in the program.</summary>
    private readonly record struct RemoteMsg(ulong Name, uint NameLength, ulong Iov, ulong IovLength, ulong Control, ulong ControlLength)
    {
        public static bool TryRead(TrappedCall call, ulong address, out RemoteMsg msg)
        {
            Span<byte> raw = stackalloc byte[MsgHdrSize];
            msg = default;
            if (!call.TryRead(address, raw))
            {
                return false;
            }

            msg = new RemoteMsg(
                BinaryPrimitives.ReadUInt64LittleEndian(raw),
                BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(raw[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(raw[24..]),
                BinaryPrimitives.ReadUInt64LittleEndian(raw[32..]),
                BinaryPrimitives.ReadUInt64LittleEndian(raw[40..]));
            return true;
        }
    }

    /// <summary>The program's iovec array: (base, length) pairs; false if unreadable or too long.</summary>
    private static bool TryReadIov(TrappedCall call, RemoteMsg msg, out (ulong Base, ulong Length)[] iov)
    {
        iov = [];
        if (msg.IovLength > MaxIov)
        {
            return false;
        }

        var raw = new byte[(int)msg.IovLength * 16];
        if (raw.Length > 0 && !call.TryRead(msg.Iov, raw))
        {
            return false;
        }

        iov = new (ulong, ulong)[msg.IovLength];
        for (var i = 0; i < iov.Length; i++)
        {
            iov[i] = (BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * 16)), BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan((i * 16) + 8)));
        }

        return true;
    }

    // ---- sending ---------------------------------------------------------------------------------------------

    private void SendMsg(TrappedCall call)
    {
        var fd = (int)call.Args[0];
        if (!RemoteMsg.TryRead(call, call.Args[1], out var msg) || !NeedsTranslation(call, msg) || !call.IsValid())
        {
            call.Continue();
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
            call.Continue();
            return;
        }

        call.Complete(SendOne(call, dup.Fd, ref wildcard, msg, (int)call.Args[2]));
    }

    private void SendMmsg(TrappedCall call)
    {
        var fd = (int)call.Args[0];
        var vec = call.Args[1];
        var vlen = (int)Math.Min((uint)call.Args[2], MaxIov);
        var flags = (int)call.Args[3];
        var messages = new RemoteMsg[vlen];
        var any = false;
        for (var i = 0; i < vlen; i++)
        {
            if (!RemoteMsg.TryRead(call, vec + (ulong)(i * MmsgHdrSize), out messages[i]))
            {
                call.Continue(); // the kernel reports the fault where it finds it
                return;
            }

            any |= NeedsTranslation(call, messages[i]);
        }

        if (!any || !call.IsValid())
        {
            call.Continue();
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
            call.Continue();
            return;
        }

        // As the kernel: an error on the first message is the call's, a later one ends it with the count so far.
        var sent = 0;
        Span<byte> msgLen = stackalloc byte[4];
        for (; sent < vlen; sent++)
        {
            var n = SendOne(call, dup.Fd, ref wildcard, messages[sent], flags);
            if (n < 0)
            {
                if (sent == 0)
                {
                    call.Fail((int)-n);
                    return;
                }

                break;
            }

            BinaryPrimitives.WriteUInt32LittleEndian(msgLen, (uint)n);
            _ = call.TryWrite(vec + (ulong)(sent * MmsgHdrSize) + MsgHdrSize, msgLen);
        }

        call.Return(sent);
    }

    /// <summary>Whether a message is addressed to a VIP (only those are changed).</summary>
    private bool NeedsTranslation(TrappedCall call, RemoteMsg msg)
    {
        Span<byte> sa = stackalloc byte[SockAddr.MaxLength];
        return msg.Name != 0 && ReadAddress(call, msg.Name, msg.NameLength, sa, out var len)
            && SockAddr.TryGetV4(sa[..len], out var ip, out _) && Config.Network.IsVirtual(ip);
    }

    /// <summary>Sends one of the program's messages on behalf; the byte count or -errno.</summary>
    private long SendOne(TrappedCall call, int fd, ref bool wildcard, RemoteMsg msg, int flags)
    {
        Span<byte> sa = stackalloc byte[SockAddr.MaxLength];
        var nameLength = 0;
        var addSource = false; // IP_PKTINFO source image(own): overlay destinations from wildcard sockets only
        if (msg.Name != 0 && !ReadAddress(call, msg.Name, msg.NameLength, sa, out nameLength))
        {
            return -EFAULT;
        }

        if (nameLength > 0 && SockAddr.TryGetV4(sa[..nameLength], out var ip, out var port) && Config.Network.IsVirtual(ip))
        {
            var routeError = EnsureRoute(ip, port);
            if (routeError != 0)
            {
                return -routeError;
            }

            if (wildcard && BindUnbound(fd))
            {
                wildcard = false;
            }

            addSource = wildcard;
            nameLength = SockAddr.Make(sa, SockAddr.Family(sa), Config.Network.ToImage(ip), port);
        }

        if (!TryReadIov(call, msg, out var iov))
        {
            return msg.IovLength > MaxIov ? -EMSGSIZE : -EFAULT;
        }

        ulong total = 0;
        foreach (var (_, length) in iov)
        {
            total += length;
        }

        if (total > MaxDatagram)
        {
            return -EMSGSIZE;
        }

        var payload = new byte[(int)total];
        var at = 0;
        foreach (var (b, length) in iov)
        {
            if (length > 0 && !call.TryRead(b, payload.AsSpan(at, (int)length)))
            {
                return -EFAULT;
            }

            at += (int)length;
        }

        if (msg.ControlLength > MaxControl)
        {
            return -ENOBUFS;
        }

        var callerControl = (int)msg.ControlLength;
        var control = new byte[Align8(callerControl) + 32];
        if (callerControl > 0 && (msg.Control == 0 || !call.TryRead(msg.Control, control.AsSpan(0, callerControl))))
        {
            return -EFAULT;
        }

        var controlLength = callerControl;
        if (addSource && !HasPktInfo(control.AsSpan(0, callerControl)))
        {
            var c = control.AsSpan(Align8(callerControl), 32);
            BinaryPrimitives.WriteUInt64LittleEndian(c, 28);
            BinaryPrimitives.WriteInt32LittleEndian(c[8..], IpProtoIp);
            BinaryPrimitives.WriteInt32LittleEndian(c[12..], IpPktInfo);
            BinaryPrimitives.WriteUInt32BigEndian(c[20..], Config.Network.ToImage(Config.OwnVip));
            controlLength = Align8(callerControl) + 32;
        }

        fixed (byte* name = sa)
        fixed (byte* p = payload)
        fixed (byte* ctl = control)
        {
            var vec = new IoVec { Base = (nint)p, Length = (nuint)payload.Length };
            var m = new MsgHdr
            {
                Name = nameLength > 0 ? (nint)name : 0,
                NameLength = (uint)nameLength,
                Iov = (nint)(&vec),
                IovLength = 1,
                Control = controlLength > 0 ? (nint)ctl : 0,
                ControlLength = (nuint)controlLength,
            };
            var n = SeccompNative.SendMsg(fd, &m, flags);
            return n >= 0 ? n : -LastError;
        }
    }

    private static int Align8(int n) => (n + 7) & ~7;

    /// <summary>Walks cmsghdrs: {u64 len, i32 level, i32 type, data}, each aligned to 8.</summary>
    private static bool HasPktInfo(ReadOnlySpan<byte> control)
    {
        var at = 0;
        for (var i = 0; i < 256 && at + 16 <= control.Length; i++)
        {
            var len = (int)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(control[at..]), int.MaxValue);
            var level = BinaryPrimitives.ReadInt32LittleEndian(control[(at + 8)..]);
            var type = BinaryPrimitives.ReadInt32LittleEndian(control[(at + 12)..]);
            if ((level == IpProtoIp && type == IpPktInfo) || (level == IpProtoIpv6 && type == 50 /* IPV6_PKTINFO */))
            {
                return true;
            }

            if (len < 16)
            {
                break;
            }

            at += Align8(len);
        }

        return false;
    }

    /// <summary>Received IP_PKTINFO (int ifindex, in_addr spec_dst, in_addr addr): image addresses → VIPs, in place.</summary>
    private void TranslatePktInfo(Span<byte> control)
    {
        var at = 0;
        for (var i = 0; i < 256 && at + 16 <= control.Length; i++)
        {
            var len = (int)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(control[at..]), int.MaxValue);
            if (len < 16)
            {
                break;
            }

            if (BinaryPrimitives.ReadInt32LittleEndian(control[(at + 8)..]) == IpProtoIp
                && BinaryPrimitives.ReadInt32LittleEndian(control[(at + 12)..]) == IpPktInfo && at + 28 <= control.Length)
            {
                foreach (var offset in new[] { at + 20, at + 24 })
                {
                    var a = BinaryPrimitives.ReadUInt32BigEndian(control[offset..]);
                    if (Config.Network.IsImage(a))
                    {
                        BinaryPrimitives.WriteUInt32BigEndian(control[offset..], Config.Network.FromImage(a));
                    }
                }
            }

            at += Align8(len);
        }
    }

    // ---- receiving -------------------------------------------------------------------------------------------

    private void RecvMsg(TrappedCall call) => ReceiveMessages(call, vec: call.Args[1], vlen: 1, flags: (int)call.Args[2], single: true);

    private void RecvMmsg(TrappedCall call)
    {
        if (call.Args[4] != 0)
        {
            call.Continue(); // a recvmmsg timeout is not emulated: the kernel's own call (sources untranslated)
            return;
        }

        ReceiveMessages(call, vec: call.Args[1], vlen: (int)Math.Min((uint)call.Args[2], MaxIov), flags: (int)call.Args[3], single: false);
    }

    /// <summary>
    /// recvmsg (single) or recvmmsg on behalf. recvmmsg returns once it has one message and no more are
    /// queued (the MSG_WAITFORONE behaviour; without it the kernel would wait for all vlen messages).
    /// </summary>
    private void ReceiveMessages(TrappedCall call, ulong vec, int vlen, int flags, bool single)
    {
        var fd = (int)call.Args[0];
        if (vlen <= 0)
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

        var nonBlocking = (flags & MsgDontWait) != 0 || (Fcntl(dup.Fd, FGetFl, 0) & ONonBlock) != 0;
        if (nonBlocking || IsReadable(dup.Fd))
        {
            using (dup)
            {
                ReceiveMessagesNow(call, dup.Fd, vec, vlen, flags, single, nonBlocking, deadline: 0);
            }

            return;
        }

        var deadline = ReceiveDeadline(dup.Fd);
        call.Deferred = true;
        new Thread(() =>
        {
            using (dup)
            {
                try
                {
                    ReceiveMessagesNow(call, dup.Fd, vec, vlen, flags, single, nonBlocking: false, deadline);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"isthmus: seccomp supervisor: recvmsg of thread {call.Tid} failed: {e.Message}");
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
        { IsBackground = true, Name = "seccomp-recvmsg" }.Start();
    }

    private void ReceiveMessagesNow(TrappedCall call, int fd, ulong vec, int vlen, int flags, bool single, bool nonBlocking, long deadline)
    {
        var received = 0;
        Span<byte> four = stackalloc byte[4];
        while (received < vlen)
        {
            var address = vec + (ulong)(received * (single ? MsgHdrSize : MmsgHdrSize));
            if (!RemoteMsg.TryRead(call, address, out var msg))
            {
                call.Fail(EFAULT);
                return;
            }

            // After the first message only what is already queued is taken.
            var wait = received == 0 && !nonBlocking;
            var n = ReceiveOne(call, fd, address, msg, flags & ~MsgWaitForOne, wait, deadline);
            if (n == long.MinValue)
            {
                return; // answered (signal, timeout) or the call went away
            }

            if (n < 0)
            {
                if (received == 0)
                {
                    call.Fail((int)-n);
                    return;
                }

                break;
            }

            if (single)
            {
                call.Return(n);
                return;
            }

            BinaryPrimitives.WriteUInt32LittleEndian(four, (uint)n);
            _ = call.TryWrite(address + MsgHdrSize, four);
            received++;
        }

        call.Return(received);
    }

    /// <summary>One datagram into the program's message: byte count, -errno, or long.MinValue when the call was answered or is gone.</summary>
    private long ReceiveOne(TrappedCall call, int fd, ulong msgAddress, RemoteMsg msg, int flags, bool wait, long deadline)
    {
        if (!TryReadIov(call, msg, out var iov))
        {
            return msg.IovLength > MaxIov ? -EMSGSIZE : -EFAULT;
        }

        ulong capacity = 0;
        foreach (var (_, length) in iov)
        {
            capacity += length;
        }

        var buffer = new byte[(int)Math.Min(capacity, MaxDatagram + 1UL)];
        var control = new byte[(int)Math.Min(msg.ControlLength, MaxControl)];
        Span<byte> name = stackalloc byte[SockAddr.MaxLength];
        nint n;
        MsgHdr m;
        // Bounded by the call's life and SO_RCVTIMEO (WaitReadable answers the call when either ends).
        while (true)
        {
            if (wait && !WaitReadable(call, fd, deadline))
            {
                return long.MinValue;
            }

            fixed (byte* b = buffer)
            fixed (byte* c = control)
            fixed (byte* nm = name)
            {
                var v = new IoVec { Base = (nint)b, Length = (nuint)buffer.Length };
                m = new MsgHdr
                {
                    Name = msg.Name != 0 ? (nint)nm : 0,
                    NameLength = msg.Name != 0 ? (uint)SockAddr.MaxLength : 0,
                    Iov = (nint)(&v),
                    IovLength = 1,
                    Control = control.Length > 0 ? (nint)c : 0,
                    ControlLength = (nuint)control.Length,
                };
                n = SeccompNative.RecvMsg(fd, &m, flags | MsgDontWait);
            }

            if (n >= 0)
            {
                break;
            }

            var e = LastError;
            if (!wait || e is not (EAGAIN or EINTR))
            {
                return -e;
            }
        }

        // Data, scattered over the program's iovecs as the kernel would.
        var left = (int)Math.Min((ulong)n, (ulong)buffer.Length);
        var at = 0;
        foreach (var (b, length) in iov)
        {
            if (left == 0)
            {
                break;
            }

            var chunk = (int)Math.Min(length, (ulong)left);
            if (chunk > 0 && !call.TryWrite(b, buffer.AsSpan(at, chunk)))
            {
                return -EFAULT;
            }

            at += chunk;
            left -= chunk;
        }

        Span<byte> field = stackalloc byte[8];
        if (msg.Name != 0)
        {
            var got = (int)Math.Min(m.NameLength, SockAddr.MaxLength);
            var source = name[..got];
            if (SockAddr.TryGetV4(source, out var ip, out _) && Config.Network.IsImage(ip))
            {
                SockAddr.SetV4(source, Config.Network.FromImage(ip));
            }

            BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)got);
            if (!call.TryWrite(msg.Name, source[..Math.Min((int)msg.NameLength, got)]) || !call.TryWrite(msgAddress + 8, field[..4]))
            {
                return -EFAULT;
            }
        }

        var controlGot = (int)Math.Min((ulong)m.ControlLength, (ulong)control.Length);
        TranslatePktInfo(control.AsSpan(0, controlGot));
        BinaryPrimitives.WriteUInt64LittleEndian(field, (ulong)controlGot);
        if ((controlGot > 0 && !call.TryWrite(msg.Control, control.AsSpan(0, controlGot))) || !call.TryWrite(msgAddress + 40, field))
        {
            return -EFAULT;
        }

        BinaryPrimitives.WriteInt32LittleEndian(field, m.Flags);
        return call.TryWrite(msgAddress + 48, field[..4]) ? n : -EFAULT;
    }
}
