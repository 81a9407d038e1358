using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Isthmus.Core.Addressing;
using Microsoft.Extensions.Logging;

namespace Isthmus.Router;

/// <summary>
/// The router's real↔virtual map. Bindings (name → VIP and key) are persisted, so a node that comes back
/// gets its VIP again; sessions (who is up now, where its data endpoint is, its leg key) live in memory.
/// </summary>
public sealed class NodeRegistry
{
    private readonly object _lock = new();
    private readonly string _statePath;
    private readonly IPv4Cidr _subnet;
    private readonly ILogger _logger;
    private readonly Dictionary<string, NodeBinding> _bindings;
    private readonly Dictionary<uint, NodeSession> _liveByVip = [];
    private readonly Dictionary<ulong, NodeSession> _liveById = [];
    private readonly long _startedAt = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>
    /// A router that just (re)started knows its nodes' bindings but none of their sessions yet; its nodes notice
    /// the restart at once and re-enrol within about a second (their retry is capped at 1 s). For this long after
    /// start, a stream to a bound but absent node waits for it (<see cref="ReturningNodeWait"/>) instead of
    /// failing with EHOSTUNREACH. Later, an absent node is simply gone and is answered at once.
    /// </summary>
    public static readonly TimeSpan RestartGrace = TimeSpan.FromSeconds(30);

    public static readonly TimeSpan ReturningNodeWait = TimeSpan.FromSeconds(5);

    public NodeRegistry(string stateDirectory, IPv4Cidr subnet, ILogger logger)
    {
        Directory.CreateDirectory(stateDirectory);
        _statePath = Path.Combine(stateDirectory, "nodes.json");
        _subnet = subnet;
        _logger = logger;
        _bindings = Load(_statePath);
    }

    /// <summary>Raised (outside the lock) after a name is bound for the first time.</summary>
    public event Action? BindingsChanged;

    /// <summary>Every bound name and its VIP: the site's part of the cluster's name directory.</summary>
    public IReadOnlyList<(string Name, uint Vip)> Bindings()
    {
        lock (_lock)
        {
            return [.. _bindings.Select(b => (b.Key, b.Value.Vip))];
        }
    }

    /// <summary>The router's own VIP: the first host address of the site subnet.</summary>
    public uint RouterVip => _subnet.Network + 1;

    public int LiveCount
    {
        get
        {
            lock (_lock)
            {
                return _liveByVip.Count;
            }
        }
    }

    /// <summary>Binds (or re-binds) a name and opens its session; refuses names held by another key or another live session.</summary>
    public EnrolOutcome Enrol(string name, byte[] spki, IPEndPoint dataEndpoint, uint? requestedVip)
    {
        var bound = false;
        var outcome = EnrolLocked(name, spki, dataEndpoint, requestedVip, ref bound);
        if (bound)
        {
            BindingsChanged?.Invoke();
        }

        return outcome;
    }

    private EnrolOutcome EnrolLocked(string name, byte[] spki, IPEndPoint dataEndpoint, uint? requestedVip, ref bool bound)
    {
        lock (_lock)
        {
            var spkiText = Convert.ToBase64String(spki);
            if (_bindings.TryGetValue(name, out var binding))
            {
                if (binding.PublicKey != spkiText)
                {
                    return EnrolOutcome.Refuse("name-taken", $"node name '{name}' is bound to another key (VIP {IPv4.Format(binding.Vip)}); pick another name or revoke it");
                }

                if (requestedVip is { } want && want != binding.Vip)
                {
                    return EnrolOutcome.Refuse("vip-mismatch", $"node '{name}' holds VIP {IPv4.Format(binding.Vip)}, not {IPv4.Format(want)}");
                }

                if (_liveByVip.TryGetValue(binding.Vip, out var live))
                {
                    return EnrolOutcome.Refuse("name-in-use", $"node '{name}' is already enrolled from {live.DataEndpoint.Address}; stop that agent first (a dead agent's lease ends after {NodeSession.LeaseTimeout.TotalSeconds:0} s)");
                }
            }
            else
            {
                var vip = requestedVip ?? AllocateVip();
                if (vip == 0)
                {
                    return EnrolOutcome.Refuse("subnet-full", $"site subnet {_subnet} has no free address");
                }

                if (!IsAssignable(vip))
                {
                    return EnrolOutcome.Refuse("vip-invalid", $"{IPv4.Format(vip)} is not a node address of site subnet {_subnet}");
                }

                var holder = _bindings.FirstOrDefault(b => b.Value.Vip == vip);
                if (holder.Key is not null)
                {
                    return EnrolOutcome.Refuse("vip-taken", $"VIP {IPv4.Format(vip)} belongs to node '{holder.Key}'");
                }

                binding = new NodeBinding(vip, spkiText);
                _bindings[name] = binding;
                Save();
                bound = true;
                _logger.LogInformation("Bound node {Node} to VIP {Vip}", name, IPv4.Format(vip));
            }

            var session = new NodeSession(name, binding.Vip, NewSessionId(), RandomNumberGenerator.GetBytes(32), dataEndpoint);
            _liveByVip[session.Vip] = session;
            _liveById[session.Id] = session;
            return EnrolOutcome.Accept(session);
        }
    }

    public void End(NodeSession session, string reason)
    {
        lock (_lock)
        {
            if (_liveById.Remove(session.Id))
            {
                _liveByVip.Remove(session.Vip);
                _logger.LogInformation("Node {Node} ({Vip}) left: {Reason}", session.Name, IPv4.Format(session.Vip), reason);
            }
        }
    }

    /// <summary>Ends the live session of <paramref name="name"/>, if any (its control channel and datagram leg close); false if none.</summary>
    public bool EndByName(string name, string reason)
    {
        NodeSession? session = null;
        lock (_lock)
        {
            if (_bindings.TryGetValue(name, out var binding) && _liveByVip.TryGetValue(binding.Vip, out session))
            {
                _liveByVip.Remove(session.Vip);
                _liveById.Remove(session.Id);
                _logger.LogInformation("Node {Node} ({Vip}) left: {Reason}", session.Name, IPv4.Format(session.Vip), reason);
            }
        }

        session?.Ended.Cancel();
        return session is not null;
    }

    /// <summary>The keys (base64 SPKI) bound to the names <paramref name="select"/> picks.</summary>
    public IReadOnlyList<string> KeysOf(Func<string, bool> select)
    {
        ArgumentNullException.ThrowIfNull(select);
        lock (_lock)
        {
            return [.. _bindings.Where(b => select(b.Key)).Select(b => b.Value.PublicKey)];
        }
    }

    public bool TryGetLive(uint vip, out NodeSession session)
    {
        lock (_lock)
        {
            return _liveByVip.TryGetValue(vip, out session!);
        }
    }

    /// <summary>
    /// The live session for <paramref name="vip"/>, waiting (up to <see cref="ReturningNodeWait"/>) for a bound node
    /// to re-enrol if this router started less than <see cref="RestartGrace"/> ago; null if it does not.
    /// </summary>
    public async Task<NodeSession?> LiveOrReturningAsync(uint vip, CancellationToken cancellationToken)
    {
        if (TryGetLive(vip, out var session))
        {
            return session;
        }

        lock (_lock)
        {
            if (!_bindings.Values.Any(b => b.Vip == vip))
            {
                return null;
            }
        }

        var left = RestartGrace - System.Diagnostics.Stopwatch.GetElapsedTime(_startedAt);
        var deadline = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(Math.Min(left.TotalSeconds, ReturningNodeWait.TotalSeconds) * System.Diagnostics.Stopwatch.Frequency);
        while (System.Diagnostics.Stopwatch.GetTimestamp() < deadline)
        {
            // Bounded and only in the first seconds after a start: a poll is simpler than a wake-up per VIP.
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
            if (TryGetLive(vip, out session))
            {
                return session;
            }
        }

        return null;
    }

    public bool TryGetSession(ulong id, out NodeSession session)
    {
        lock (_lock)
        {
            return _liveById.TryGetValue(id, out session!);
        }
    }

    private bool IsAssignable(uint vip) => _subnet.Contains(vip) && vip > RouterVip && vip < _subnet.Last;

    private uint AllocateVip()
    {
        var used = _bindings.Values.Select(b => b.Vip).ToHashSet();
        for (var vip = RouterVip + 1; vip < _subnet.Last; vip++)
        {
            if (!used.Contains(vip))
            {
                return vip;
            }
        }

        return 0;
    }

    private ulong NewSessionId()
    {
        ulong id;
        do
        {
            id = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        }
        while (id == 0 || _liveById.ContainsKey(id));
        return id;
    }

    private static Dictionary<string, NodeBinding> Load(string path)
    {
        if (!File.Exists(path))
        {
            return new Dictionary<string, NodeBinding>(StringComparer.Ordinal);
        }

        try
        {
            var loaded = JsonSerializer.Deserialize(File.ReadAllBytes(path), RegistryJsonContext.Default.DictionaryStringNodeBinding);
            return new Dictionary<string, NodeBinding>(loaded ?? [], StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new Core.UserException($"{path} is damaged ({e.Message}); restore it or remove it to forget all node bindings", e, 1);
        }
    }

    private void Save()
    {
        var tmp = _statePath + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(_bindings, RegistryJsonContext.Default.DictionaryStringNodeBinding));
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, _statePath, overwrite: true);
    }
}

public sealed record NodeBinding(
    [property: JsonPropertyName("vip")] uint Vip,
    [property: JsonPropertyName("spki")] string PublicKey);

public sealed record EnrolOutcome(NodeSession? Session, string Code, string Message)
{
    public static EnrolOutcome Accept(NodeSession session) => new(session, "", "");

    public static EnrolOutcome Refuse(string code, string message) => new(null, code, message);
}

[JsonSerializable(typeof(Dictionary<string, NodeBinding>))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
