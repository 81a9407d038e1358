using System.Net.Sockets;
using Isthmus.Core;
using Isthmus.Core.Wire;

namespace Isthmus.Interpose;

/// <summary>
/// Asks a running node agent what an interposed program would ask it, over the same control socket and
/// protocol as the preload shim (for <c>isthmus resolve</c> and scripts).
/// </summary>
public sealed class AgentClient(AgentInfo agent)
{
    public AgentInfo Agent { get; } = agent;

    /// <summary>Finds the agent to ask: the one named, or the only one running on this host.</summary>
    public static AgentClient Find(string? node)
    {
        if (node is not null)
        {
            return new AgentClient(InterposedEnvironment.FindAgent(node));
        }

        var dir = RuntimeDirectory.Resolve();
        var running = Directory.Exists(dir)
            ? Directory.GetFiles(dir, "*.json").Select(Path.GetFileNameWithoutExtension).OfType<string>().Order(StringComparer.Ordinal).ToList()
            : [];
        return running.Count switch
        {
            0 => throw new UserException($"no node agent runs on this host (looked in {dir}); start one with 'isthmus node', or pass --node", 1),
            1 => new AgentClient(InterposedEnvironment.FindAgent(running[0])),
            _ => throw new UserException($"several node agents run on this host ({string.Join(", ", running)}); pass --node to pick one"),
        };
    }

    public Task<ShimResponse> ResolveNameAsync(string name, CancellationToken cancellationToken) =>
        AskAsync(new ShimRequest(ShimOp.ResolveName, false, default, 0, 0, name), cancellationToken);

    public Task<ShimResponse> ResolveAddressAsync(uint vip, CancellationToken cancellationToken) =>
        AskAsync(new ShimRequest(ShimOp.ResolveAddress, false, new VirtualEndpoint(vip, 0), 0, 0), cancellationToken);

    private async Task<ShimResponse> AskAsync(ShimRequest request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(Agent.SocketPath), deadline.Token).ConfigureAwait(false);
            var bytes = new byte[request.Length];
            request.Write(bytes);
            await socket.SendAsync(bytes, SocketFlags.None, deadline.Token).ConfigureAwait(false);
            var answer = new byte[ShimResponse.Size + ShimResponse.MaxPayload];
            var n = await socket.ReceiveAsync(answer, SocketFlags.None, deadline.Token).ConfigureAwait(false);
            return ShimResponse.TryParse(answer.AsSpan(0, n), out var response) ? response
                : throw new UserException($"node agent '{Agent.Name}' sent an invalid answer", 1);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new UserException($"node agent '{Agent.Name}' did not answer ({e.Message}); is it still running?", e, 1);
        }
    }
}
