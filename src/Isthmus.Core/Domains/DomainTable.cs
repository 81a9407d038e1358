using System.Collections.Frozen;
using System.Security.Cryptography;
using Isthmus.Core.Config;

namespace Isthmus.Core.Domains;

/// <summary>
/// The cluster's communication domains at one version: which nodes may talk to which (two nodes may if some
/// domain holds both), and which nodes are revoked (they share no domain with anyone). Immutable: every change
/// returns a new table with the next version, so routers can exchange tables and keep the newest. The table
/// made from a cluster file with no <c>[domains]</c> is version 0 with one domain, <c>default = ["*"]</c>.
/// </summary>
public sealed class DomainTable
{
    public const string DefaultDomain = "default";

    /// <summary>More would make a table frame heavy for no use we know of; a clear error beats a slow router.</summary>
    public const int MaxDomains = 4096;

    public const int MaxMembers = 65536;

    private readonly FrozenDictionary<string, string[]> _domains;

    // Membership as bit sets over the domains (in name order), so that a check costs a few dictionary lookups
    // and ANDs however many domains and members there are: routers run it on every datagram.
    private readonly ulong[] _everyone;
    private readonly FrozenDictionary<string, ulong[]> _byName;
    private readonly FrozenDictionary<(string Name, string Site), ulong[]> _byNameAndSite;
    private readonly FrozenSet<string> _revokedNames;
    private readonly FrozenSet<(string Name, string Site)> _revokedNodes;

    public DomainTable(long version, IEnumerable<KeyValuePair<string, IEnumerable<string>>> domains,
        IEnumerable<string>? revoked = null, IEnumerable<string>? revokedKeys = null, bool drain = false)
    {
        ArgumentNullException.ThrowIfNull(domains);
        if (version < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(version), "a domain table version is never negative");
        }

        Version = version;
        _domains = domains.ToFrozenDictionary(d => d.Key, d => d.Value.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(), StringComparer.Ordinal);
        Revoked = [.. (revoked ?? []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        RevokedKeys = [.. (revokedKeys ?? []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        Drain = drain;
        Names = [.. _domains.Keys.Order(StringComparer.Ordinal)];
        var words = (Names.Count + 63) / 64;
        _everyone = new ulong[words];
        var byName = new Dictionary<string, ulong[]>(StringComparer.Ordinal);
        var byNameAndSite = new Dictionary<(string, string), ulong[]>();
        for (var i = 0; i < Names.Count; i++)
        {
            foreach (var member in _domains[Names[i]])
            {
                var site = DomainMember.SiteOf(member);
                var bits = member == DomainMember.Everyone ? _everyone
                    : site is null ? Bits(byName, member, words)
                    : Bits(byNameAndSite, (member[..member.IndexOf('.', StringComparison.Ordinal)], site), words);
                bits[i / 64] |= 1UL << (i % 64);
            }
        }

        _byName = byName.ToFrozenDictionary(StringComparer.Ordinal);
        _byNameAndSite = byNameAndSite.ToFrozenDictionary();
        _revokedNames = Revoked.Where(r => DomainMember.SiteOf(r) is null).ToFrozenSet(StringComparer.Ordinal);
        _revokedNodes = Revoked.Where(r => DomainMember.SiteOf(r) is not null)
            .Select(r => (r[..r.IndexOf('.', StringComparison.Ordinal)], DomainMember.SiteOf(r)!)).ToFrozenSet();
        Digest = Convert.ToHexStringLower(SHA256.HashData(DomainTableCodec.Encode(this)));
    }

    /// <summary>What a cluster without a <c>[domains]</c> table gets: every node, present and future, in one domain.</summary>
    public static DomainTable Default { get; } = new(0, [KeyValuePair.Create<string, IEnumerable<string>>(DefaultDomain, [DomainMember.Everyone])]);

    /// <summary>Raised by every change; routers keep the table with the higher version (then the higher digest).</summary>
    public long Version { get; }

    /// <summary>Domain names in ordinal order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Revoked node members (NODE or NODE.SITE): such a node shares no domain, cannot enrol, its streams end.</summary>
    public IReadOnlyList<string> Revoked { get; }

    /// <summary>Base64 SPKIs of revoked node keys: an enrolment with one is refused whatever its name.</summary>
    public IReadOnlyList<string> RevokedKeys { get; }

    /// <summary>
    /// Whether the change that made this version lets established streams that it forbids run until they end
    /// (<c>domain remove --drain</c>); otherwise routers reset them. A revocation always ends streams.
    /// </summary>
    public bool Drain { get; }

    /// <summary>SHA-256 of the canonical encoding: equal tables have equal digests, and ties in version are broken by it.</summary>
    public string Digest { get; }

    public bool IsDefault => Version == 0 && Digest == Default.Digest;

    /// <summary>The members of <paramref name="domain"/>, sorted; a <see cref="KeyNotFoundException"/> if it does not exist.</summary>
    public IReadOnlyList<string> MembersOf(string domain) => _domains[domain];

    public bool Contains(string domain) => _domains.ContainsKey(domain);

    /// <summary>Makes a table from the cluster file's <c>[domains]</c> (version 0), or <see cref="Default"/> when it has none.</summary>
    public static DomainTable FromClusterFile(ClusterFile cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        return cluster.Domains is null
            ? Default
            : new DomainTable(0, cluster.Domains.Select(d => KeyValuePair.Create<string, IEnumerable<string>>(d.Name, d.Members)));
    }

    /// <summary>Whether this table should replace <paramref name="other"/>: a higher version, or the same version and a higher digest.</summary>
    public bool Supersedes(DomainTable other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Version != other.Version ? Version > other.Version : string.CompareOrdinal(Digest, other.Digest) > 0;
    }

    public bool IsRevoked(NodeRef node) =>
        node.Name is { } name && (_revokedNames.Contains(name) || (node.Site is { } site && _revokedNodes.Contains((name, site))));

    public bool IsKeyRevoked(string spki) => RevokedKeys.Contains(spki, StringComparer.Ordinal);

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> may talk: neither is revoked and some domain holds both.</summary>
    public bool Shares(NodeRef a, NodeRef b)
    {
        if (IsRevoked(a) || IsRevoked(b))
        {
            return false;
        }

        var a1 = BitsOf(_byName, a.Name);
        var a2 = a.Name is not null && a.Site is not null && _byNameAndSite.TryGetValue((a.Name, a.Site), out var x) ? x : [];
        var b1 = BitsOf(_byName, b.Name);
        var b2 = b.Name is not null && b.Site is not null && _byNameAndSite.TryGetValue((b.Name, b.Site), out var y) ? y : [];
        for (var i = 0; i < _everyone.Length; i++)
        {
            var ofA = _everyone[i] | Word(a1, i) | Word(a2, i);
            var ofB = _everyone[i] | Word(b1, i) | Word(b2, i);
            if ((ofA & ofB) != 0)
            {
                return true;
            }
        }

        return false;
    }

    private static ulong[] BitsOf(FrozenDictionary<string, ulong[]> map, string? key) =>
        key is not null && map.TryGetValue(key, out var bits) ? bits : [];

    private static ulong Word(ulong[] bits, int i) => bits.Length == 0 ? 0 : bits[i];

    private static ulong[] Bits<TKey>(Dictionary<TKey, ulong[]> map, TKey key, int words)
        where TKey : notnull
    {
        if (!map.TryGetValue(key, out var bits))
        {
            bits = new ulong[words];
            map[key] = bits;
        }

        return bits;
    }

    /// <summary>The domains that hold <paramref name="node"/>, in name order.</summary>
    public IEnumerable<string> DomainsOf(NodeRef node) => Names.Where(n => Holds(_domains[n], node));

    public DomainTable Create(string domain)
    {
        CheckDomainName(domain);
        if (Contains(domain))
        {
            throw new DomainChangeException($"domain '{domain}' already exists");
        }

        if (_domains.Count >= MaxDomains)
        {
            throw new DomainChangeException($"a cluster has at most {MaxDomains} domains");
        }

        return Next(Domains().Append(KeyValuePair.Create<string, IEnumerable<string>>(domain, [])), Revoked, RevokedKeys, drain: false);
    }

    /// <summary>Deletes a domain; its members lose what only it gave them (established streams: ended unless <paramref name="drain"/>).</summary>
    public DomainTable Delete(string domain, bool drain)
    {
        Existing(domain);
        return Next(Domains().Where(d => d.Key != domain), Revoked, RevokedKeys, drain);
    }

    public DomainTable Add(string domain, IReadOnlyCollection<string> members)
    {
        var current = Existing(domain);
        CheckMembers(members);
        if (current.Length + members.Count > MaxMembers)
        {
            throw new DomainChangeException($"a domain has at most {MaxMembers} members");
        }

        return Next(Domains().Select(d => d.Key == domain ? KeyValuePair.Create(d.Key, d.Value.Concat(members)) : d), Revoked, RevokedKeys, drain: false);
    }

    public DomainTable Remove(string domain, IReadOnlyCollection<string> members, bool drain)
    {
        var current = Existing(domain);
        CheckMembers(members);
        var missing = members.Where(m => !current.Contains(m, StringComparer.Ordinal)).ToList();
        if (missing.Count > 0)
        {
            var hint = current.Contains(DomainMember.Everyone) ? $" (it holds every node as '*': remove '*' and add the nodes it should keep)" : "";
            throw new DomainChangeException($"domain '{domain}' has no member {string.Join(", ", missing.Select(m => $"'{m}'"))}{hint}");
        }

        return Next(Domains().Select(d => d.Key == domain ? KeyValuePair.Create(d.Key, d.Value.Except(members, StringComparer.Ordinal)) : d), Revoked, RevokedKeys, drain);
    }

    /// <summary>Revokes a node (NODE: that name at every site; NODE.SITE: one node). Its streams end whatever the drain setting.</summary>
    public DomainTable Revoke(string node)
    {
        if (node == DomainMember.Everyone || !DomainMember.IsValid(node))
        {
            throw new DomainChangeException($"'{node}' is not a node: use NODE or NODE.SITE");
        }

        if (Revoked.Contains(node, StringComparer.Ordinal))
        {
            throw new DomainChangeException($"node '{node}' is already revoked");
        }

        return Next(Domains(), Revoked.Append(node), RevokedKeys, drain: false);
    }

    /// <summary>Adds the keys of revoked nodes (a router adds the keys of its own revoked bindings, which only it knows).</summary>
    public DomainTable WithRevokedKeys(IEnumerable<string> keys) => Next(Domains(), Revoked, RevokedKeys.Concat(keys), Drain);

    private static bool Holds(string[] members, NodeRef node)
    {
        foreach (var member in members)
        {
            if (DomainMember.Matches(member, node))
            {
                return true;
            }
        }

        return false;
    }

    private IEnumerable<KeyValuePair<string, IEnumerable<string>>> Domains() =>
        _domains.Select(d => KeyValuePair.Create<string, IEnumerable<string>>(d.Key, d.Value));

    private DomainTable Next(IEnumerable<KeyValuePair<string, IEnumerable<string>>> domains, IEnumerable<string> revoked, IEnumerable<string> keys, bool drain) =>
        new(Version + 1, domains, revoked, keys, drain);

    private string[] Existing(string domain)
    {
        CheckDomainName(domain);
        return _domains.TryGetValue(domain, out var members)
            ? members
            : throw new DomainChangeException($"no domain '{domain}' (domains: {(Names.Count == 0 ? "none" : string.Join(", ", Names))}; make it with 'isthmus domain create {domain}')");
    }

    private static void CheckDomainName(string domain)
    {
        if (!DnsLabel.IsValid(domain))
        {
            throw new DomainChangeException($"'{domain}' is not a valid domain name: use {DnsLabel.Rule}");
        }
    }

    private static void CheckMembers(IReadOnlyCollection<string> members)
    {
        if (members.Count == 0)
        {
            throw new DomainChangeException("name at least one node");
        }

        foreach (var member in members)
        {
            if (!DomainMember.IsValid(member))
            {
                throw new DomainChangeException($"'{member}' is not a node: use {DomainMember.Rule}");
            }
        }
    }
}

/// <summary>A change to a domain table that cannot be made (unknown domain, bad name); the message says why.</summary>
public sealed class DomainChangeException : UserException
{
    public DomainChangeException(string message) : base(message)
    {
    }

    public DomainChangeException()
    {
    }

    public DomainChangeException(string message, Exception inner) : base(message, inner)
    {
    }
}
