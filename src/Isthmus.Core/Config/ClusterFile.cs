using Isthmus.Core.Addressing;
using Isthmus.Core.Domains;
using Isthmus.Core.Security;

namespace Isthmus.Core.Config;

/// <summary>
/// The cluster file (<c>DIR/cluster.toml</c>): the route table every router and node agent reads. It holds
/// the <c>[cluster]</c> settings and the sites in file order. It holds no secrets.
/// </summary>
/// <param name="Cluster">The <c>[cluster]</c> table.</param>
/// <param name="Sites">The <c>[sites.NAME]</c> tables, in file order.</param>
public sealed record ClusterFile(ClusterSettings Cluster, IReadOnlyList<SiteSettings> Sites)
{
    private const string Header = """
        Isthmus cluster file: the route table of one personal cluster.
        Made by 'isthmus cluster new' and 'isthmus cluster add-site'; every router and node agent reads it.
        It holds no secrets: those are ca.key, enrol.secret, router.secret and sites/*/router.key beside it.
        [cluster]: network is the private network all VIPs come from; image is where VIPs appear in 127/8;
          node_hostname = true makes gethostname() in interposed programs return the node's name;
          direct_lan = false sends streams between nodes of one site through the router instead of node to node.
        [sites.NAME]: subnet is the site's part of the network (.1 is its router, nodes get .2 up);
          wan is where the other sites' routers reach this site's router, lan where its nodes reach it.
        [domains]: NAME = ["node", "node.site", "*"]: communication domains, the nodes that may talk to one another
          (no [domains] table: every node in one domain). Routers read it at their first start; later changes are
          made with 'isthmus domain ...' and kept in state/SITE/domains.json, which then wins over this table.
        Hand edits are fine while no router runs; 'isthmus cluster add-site' rewrites this file and its comments.
        """;

    private static readonly string[] ClusterKeys = ["name", "id", "network", "image", "wan_encryption", "node_hostname", "wan_emulation", "direct_lan"];
    private static readonly string[] SiteKeys = ["subnet", "wan", "lan", "wan_emulation"];

    /// <summary>The <c>[domains]</c> table in file order, or null when the file has none (every node in one domain).</summary>
    public IReadOnlyList<DomainSettings>? Domains { get; init; }

    /// <summary>The address plan of the cluster network and its loopback image.</summary>
    public VirtualNetwork VirtualNetwork => new(Cluster.Network, Cluster.ImageBase);

    /// <summary>The site called <paramref name="name"/>, or null.</summary>
    public SiteSettings? FindSite(string name) => Sites.FirstOrDefault(s => s.Name == name);

    /// <summary>The site whose subnet holds <paramref name="vip"/> (host order), or null.</summary>
    public SiteSettings? SiteForAddress(uint vip) => Sites.FirstOrDefault(s => s.Subnet.Contains(vip));

    /// <summary>A copy with <paramref name="site"/> appended; a <see cref="UserException"/> if it does not fit.</summary>
    public ClusterFile WithSite(SiteSettings site)
    {
        var result = this with { Sites = [.. Sites, site] };
        result.Validate();
        return result;
    }

    /// <summary>Checks everything <see cref="Load"/> checks; a <see cref="UserException"/> names the first problem.</summary>
    public void Validate()
    {
        if (FindProblem(Cluster, Sites) is { } problem)
        {
            throw new UserException(problem.Site is null ? problem.Reason : $"site '{problem.Site}': {problem.Reason}");
        }
    }

    /// <summary>The file's text, with a header comment that says what the file is.</summary>
    public string ToToml()
    {
        var w = new TomlWriter().Comment(Header).BlankLine()
            .Table("cluster")
            .Value("name", Cluster.Name)
            .Value("id", Cluster.Id)
            .Value("network", Cluster.Network.ToString())
            .Value("image", IPv4.Format(Cluster.ImageBase))
            .Value("wan_encryption", Cluster.WanEncryption)
            .Value("node_hostname", Cluster.NodeHostname);
        if (Cluster.WanEmulation is { } clusterEmulation)
        {
            w.Value("wan_emulation", clusterEmulation.ToString());
        }

        if (!Cluster.DirectLan)
        {
            w.Value("direct_lan", false); // written only when off, so files of clusters that keep the default stay as they were
        }

        foreach (var site in Sites)
        {
            w.BlankLine()
                .Table("sites", site.Name)
                .Value("subnet", site.Subnet.ToString())
                .Value("wan", site.Wan.ToString())
                .Value("lan", site.Lan.ToString());
            if (site.WanEmulation is { } siteEmulation)
            {
                w.Value("wan_emulation", siteEmulation.ToString());
            }
        }

        if (Domains is not null)
        {
            w.BlankLine().Table("domains");
            foreach (var domain in Domains)
            {
                w.Value(domain.Name, domain.Members);
            }
        }

        return w.ToString();
    }

    /// <summary>Validates, then writes the file atomically (a temporary file renamed over it).</summary>
    public void Save(string path)
    {
        Validate();
        SecureFile.WriteAtomic(path, ToToml(), secret: false);
    }

    /// <summary>Reads and validates a cluster file.</summary>
    /// <exception cref="ConfigException">The file is not valid; the message is <c>FILE:LINE: what is wrong</c>.</exception>
    /// <exception cref="UserException">The file is missing or unreadable.</exception>
    public static ClusterFile Load(string path) => FromDocument(TomlDocument.Load(path));

    /// <summary>Parses and validates the text of a cluster file; <paramref name="file"/> is used in messages.</summary>
    public static ClusterFile Parse(string text, string file = "cluster.toml") => FromDocument(TomlDocument.Parse(text, file));

    /// <summary>Reads a parsed document as a cluster file, validating every key.</summary>
    public static ClusterFile FromDocument(TomlDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var root = document.Root;
        foreach (var value in root.Values)
        {
            throw value.Error($"unknown key '{value.Key}': keys belong under [cluster] or [sites.NAME] (domains under [domains])");
        }

        foreach (var (name, table) in root.Tables)
        {
            if (name is not ("cluster" or "sites" or "domains"))
            {
                throw new ConfigException(document.File, LineOf(table), $"unknown table [{table.Name}]: the tables are [cluster], [sites.NAME] and [domains]");
            }
        }

        var clusterTable = root.GetTable("cluster")
            ?? throw new ConfigException(document.File, 0, "no [cluster] table: is this a cluster file made by 'isthmus cluster new'?");
        var lines = new Dictionary<(int Site, string Key), int>();
        var cluster = ReadCluster(clusterTable, lines);

        var sites = new List<SiteSettings>();
        if (root.GetTable("sites") is { } sitesTable)
        {
            foreach (var value in sitesTable.Values)
            {
                throw value.Error($"unknown key '{value.Key}' in [sites]: each site is a table, [sites.NAME]");
            }

            foreach (var (name, table) in sitesTable.Tables)
            {
                lines[(sites.Count, "")] = LineOf(table);
                sites.Add(ReadSite(name, table, sites.Count, lines));
            }
        }

        if (FindProblem(cluster, sites) is { } problem)
        {
            lines.TryGetValue((problem.SiteIndex, problem.Key), out var line);
            throw new ConfigException(document.File, line, problem.Site is null ? problem.Reason : $"[sites.{problem.Site}]: {problem.Reason}");
        }

        var domains = root.GetTable("domains") is { } domainsTable ? ReadDomains(domainsTable, sites) : null;
        return new ClusterFile(cluster, sites) { Domains = domains };
    }

    /// <summary>Whether both files have equal settings, equal sites in the same order and equal domains.</summary>
    public bool Equals(ClusterFile? other) =>
        other is not null && Cluster == other.Cluster && Sites.SequenceEqual(other.Sites)
        && (Domains is null ? other.Domains is null : other.Domains is not null && Domains.SequenceEqual(other.Domains));

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Cluster);
        foreach (var site in Sites)
        {
            hash.Add(site);
        }

        return hash.ToHashCode();
    }

    private static ClusterSettings ReadCluster(TomlTable table, Dictionary<(int, string), int> lines)
    {
        CheckKeys(table, ClusterKeys, "[cluster]");
        var name = Required(table, "name", "the cluster name, like name = \"isthmus\"", -1, lines);
        var nameText = name.AsString();
        if (!DnsLabel.IsValid(nameText))
        {
            throw name.Error($"cluster name '{nameText}' is not allowed: use {DnsLabel.Rule}");
        }

        var id = Required(table, "id", "the cluster's random identity, 16 hex digits", -1, lines);
        var idText = id.AsString();
        if (!IsClusterId(idText))
        {
            throw id.Error($"id '{idText}' is not 16 lower-case hex digits");
        }

        var network = Required(table, "network", "the cluster network, like network = \"100.64.0.0/16\"", -1, lines);
        if (!IPv4Cidr.TryParse(network.AsString(), out var cidr, out var error))
        {
            throw network.Error(error);
        }

        var imageBase = VirtualNetwork.DefaultImageBase;
        if (Optional(table, "image", -1, lines) is { } image)
        {
            if (!IPv4.TryParse(image.AsString(), out imageBase))
            {
                throw image.Error($"image '{image.AsString()}' is not an IPv4 address (like \"127.100.0.0\")");
            }
        }

        var wanEncryption = Optional(table, "wan_encryption", -1, lines)?.AsBoolean() ?? true;
        var nodeHostname = Optional(table, "node_hostname", -1, lines)?.AsBoolean() ?? false;
        var emulation = ReadEmulation(Optional(table, "wan_emulation", -1, lines));
        var directLan = Optional(table, "direct_lan", -1, lines)?.AsBoolean() ?? true;
        return new ClusterSettings(nameText, idText, cidr, imageBase, wanEncryption, nodeHostname, emulation, directLan);
    }

    private static SiteSettings ReadSite(string name, TomlTable table, int index, Dictionary<(int, string), int> lines)
    {
        if (!DnsLabel.IsValid(name))
        {
            throw new ConfigException(table.File, LineOf(table), $"site name '{name}' is not allowed: use {DnsLabel.Rule}");
        }

        var where = $"[sites.{name}]";
        CheckKeys(table, SiteKeys, where);
        var subnetValue = Required(table, "subnet", "the site's subnet, like subnet = \"100.64.1.0/24\"", index, lines, where);
        if (!IPv4Cidr.TryParse(subnetValue.AsString(), out var subnet, out var error))
        {
            throw subnetValue.Error(error);
        }

        var wan = ReadHostPort(Required(table, "wan", "where other routers reach this one, like wan = \"198.51.100.7:7000\"", index, lines, where));
        var lan = ReadHostPort(Required(table, "lan", "where this site's nodes reach its router, like lan = \"10.0.0.1:7001\"", index, lines, where));
        return new SiteSettings(name, subnet, wan, lan, ReadEmulation(Optional(table, "wan_emulation", index, lines)));
    }

    /// <summary><c>wan_emulation = "delay=5ms,..."</c>; the error names the bad part.</summary>
    private static Relay.Emulation.WanEmulationSpec? ReadEmulation(TomlValue? value) =>
        value is null ? null
        : Relay.Emulation.WanEmulationSpec.TryParse(value.AsString(), out var spec, out var error) ? spec
        : throw value.Error($"wan_emulation: {error} (syntax: {Relay.Emulation.WanEmulationSpec.Syntax})");

    /// <summary>
    /// <c>[domains]</c>: <c>NAME = [members]</c> lines, or <c>[domains.NAME]</c> tables with <c>nodes = [members]</c>.
    /// A <c>NODE.SITE</c> member must name a site of this file; a domain may be empty (nodes are added at run time).
    /// </summary>
    private static List<DomainSettings> ReadDomains(TomlTable table, IReadOnlyList<SiteSettings> sites)
    {
        var result = new List<DomainSettings>();
        foreach (var (name, node) in table.Entries)
        {
            TomlValue members;
            if (node is TomlTable sub)
            {
                CheckKeys(sub, ["nodes"], $"[domains.{name}]");
                members = sub.GetValue("nodes") ?? throw new ConfigException(table.File, LineOf(sub), $"[domains.{name}] has no 'nodes' (like nodes = [\"a1\", \"b1\"])");
            }
            else
            {
                members = (TomlValue)node;
            }

            if (!DnsLabel.IsValid(name))
            {
                throw members.Error($"domain name '{name}' is not allowed: use {DnsLabel.Rule}");
            }

            var list = members.AsStringArray();
            foreach (var member in list)
            {
                if (!DomainMember.IsValid(member))
                {
                    throw members.Error($"domain '{name}': '{member}' is not a node: use {DomainMember.Rule}");
                }

                if (DomainMember.SiteOf(member) is { } site && sites.All(s => s.Name != site))
                {
                    throw members.Error($"domain '{name}': '{member}' names site '{site}', which is not in this file");
                }
            }

            result.Add(new DomainSettings(name, list));
        }

        if (result.Count == 0)
        {
            throw new ConfigException(table.File, LineOf(table) > 0 ? LineOf(table) : table.Line,
                "[domains] names no domain: remove it to keep every node in one domain, or add NAME = [\"node\", ...]");
        }

        return result;
    }

    private static HostPort ReadHostPort(TomlValue value) =>
        HostPort.TryParse(value.AsString(), out var result, out var error) ? result : throw value.Error($"{value.Key}: {error}");

    private static void CheckKeys(TomlTable table, string[] allowed, string where)
    {
        foreach (var (key, node) in table.Entries)
        {
            if (!allowed.Contains(key) || node is TomlTable)
            {
                var line = node is TomlTable sub ? LineOf(sub) : node.Line;
                throw new ConfigException(table.File, line,
                    $"unknown key '{key}' in {where} (the keys are {string.Join(", ", allowed)})");
            }
        }
    }

    private static TomlValue Required(TomlTable table, string key, string hint, int site,
        Dictionary<(int, string), int> lines, string where = "[cluster]") =>
        Optional(table, key, site, lines)
        ?? throw new ConfigException(table.File, LineOf(table), $"{where} has no '{key}' ({hint})");

    private static TomlValue? Optional(TomlTable table, string key, int site, Dictionary<(int, string), int> lines)
    {
        var value = table.GetValue(key);
        if (value is not null)
        {
            lines[(site, key)] = value.Line;
        }

        return value;
    }

    // A table only implied by a deeper header ([a.b] implies [a]) has no line of its own: use its first child's.
    private static int LineOf(TomlTable table) =>
        table.Line > 0 ? table.Line : table.Entries.Select(e => e.Value is TomlTable t ? LineOf(t) : e.Value.Line).FirstOrDefault();

    private static bool IsClusterId(string id) => id.Length == 16 && id.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    // Checks that need the whole file. SiteIndex -1 and Key name a [cluster] key; Key "" a site's header.
    private static (string Reason, string? Site, int SiteIndex, string Key)? FindProblem(ClusterSettings cluster, IReadOnlyList<SiteSettings> sites)
    {
        if (!DnsLabel.IsValid(cluster.Name))
        {
            return ($"cluster name '{cluster.Name}' is not allowed: use {DnsLabel.Rule}", null, -1, "name");
        }

        if (!IsClusterId(cluster.Id))
        {
            return ($"cluster id '{cluster.Id}' is not 16 lower-case hex digits", null, -1, "id");
        }

        if (!VirtualNetwork.IsValid(cluster.Network, cluster.ImageBase, out var reason))
        {
            var badPrefix = cluster.Network.PrefixLength is < VirtualNetwork.MinPrefixLength or > VirtualNetwork.MaxPrefixLength;
            return (reason, null, -1, badPrefix ? "network" : "image");
        }

        for (var i = 0; i < sites.Count; i++)
        {
            var site = sites[i];
            if (!DnsLabel.IsValid(site.Name))
            {
                return ($"site name '{site.Name}' is not allowed: use {DnsLabel.Rule}", site.Name, i, "");
            }

            if (!cluster.Network.Contains(site.Subnet))
            {
                return ($"subnet {site.Subnet} is not inside the cluster network {cluster.Network}", site.Name, i, "subnet");
            }

            if (site.Subnet.PrefixLength > 30)
            {
                return ($"subnet {site.Subnet} is too small: a site needs at least a /30 (router .1 and one node)", site.Name, i, "subnet");
            }

            for (var j = 0; j < i; j++)
            {
                if (sites[j].Name == site.Name)
                {
                    return ($"site '{site.Name}' is defined twice", site.Name, i, "");
                }

                if (sites[j].Subnet.Overlaps(site.Subnet))
                {
                    return ($"subnet {site.Subnet} overlaps site '{sites[j].Name}' ({sites[j].Subnet})", site.Name, i, "subnet");
                }
            }
        }

        return null;
    }
}
