using System.Net.Sockets;
using Isthmus.Core.Wire;

namespace Isthmus.Node;

/// <summary>
/// What the agent answers a shim request with: the response, and for ADOPT the socket to pass along with it
/// (SCM_RIGHTS) and what to do once it is sent (close the agent's copies).
/// </summary>
internal readonly record struct ShimReply(ShimResponse Response, Socket? Pass = null, Action? AfterSend = null)
{
    public static implicit operator ShimReply(ShimResponse response) => new(response);
}
