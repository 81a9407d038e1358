using System.Runtime.InteropServices;

namespace Isthmus.Core.Native;

// The sendmsg/recvmsg structures (64-bit Linux), shared by the agent's descriptor passing and the seccomp
// supervisor's reading of trapped programs' messages.

/// <summary>struct iovec.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct IoVec
{
    public nint Base;
    public nuint Length;
}

/// <summary>struct msghdr.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct MsgHdr
{
    public nint Name;
    public uint NameLength;
    public nint Iov;
    public nuint IovLength;
    public nint Control;
    public nuint ControlLength;
    public int Flags;
}
