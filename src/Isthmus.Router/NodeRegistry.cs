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
