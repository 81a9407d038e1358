using System.Net.Sockets;
using System.Runtime.InteropServices;
using Isthmus.Core.Native;

namespace Isthmus.Node;

/// <summary>
/// Sends one datagram with a file descriptor attached (SCM_RIGHTS) on an AF_UNIX socket: how the agent hands a
/// direct stream's socket to the program whose shim adopts it. .NET has no API for ancillary data.
/// </summary>
internal static partial class DescriptorPassing
{
    private const int SolSocket = 1;
    private const int ScmRights = 1;
    private const int MsgNoSignal = 0x4000;

    /// <summary>cmsghdr (len, level, type) followed by one int, padded to CMSG_SPACE(sizeof(int)) = 24 on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RightsMessage
    {
        public nuint Length;
        public int Level;
        public int Type;
        public int Descriptor;
        public int Padding;
    }

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static unsafe partial nint SendMsg(SafeHandle socket, MsgHdr* message, int flags);

    /// <summary>Sends <paramref name="payload"/> on <paramref name="unix"/> with <paramref name="passed"/>'s descriptor attached; false if the kernel refused.</summary>
    public static unsafe bool Send(Socket unix, ReadOnlySpan<byte> payload, Socket passed)
    {
        var added = false;
        var handle = passed.SafeHandle;
        handle.DangerousAddRef(ref added);
        try
        {
            fixed (byte* data = payload)
            {
                var iov = new IoVec { Base = (nint)data, Length = (nuint)payload.Length };
                var rights = new RightsMessage
                {
                    Length = (nuint)(sizeof(nuint) + (2 * sizeof(int)) + sizeof(int)),
                    Level = SolSocket,
                    Type = ScmRights,
                    Descriptor = (int)handle.DangerousGetHandle(),
                };
                var message = new MsgHdr { Iov = (nint)(&iov), IovLength = 1, Control = (nint)(&rights), ControlLength = (nuint)sizeof(RightsMessage) };
                return SendMsg(unix.SafeHandle, &message, MsgNoSignal) == payload.Length;
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }
}
