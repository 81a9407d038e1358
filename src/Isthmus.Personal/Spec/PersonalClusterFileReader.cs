using System.Globalization;
using System.Text.RegularExpressions;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Config;

namespace Isthmus.Personal.Spec;

/// <summary>
/// Reads a personal-cluster file (see docs/ARCHITECTURE.md, "Personal clusters"). Every mistake is a
/// <see cref="ConfigException"/> <c>FILE:LINE: what is wrong</c>; unknown keys and tables are errors, not ignored.
/// </summary>
public static partial class PersonalClusterFileReader
{
    private static readonly string[] RootTables = ["cluster", "submit", "manager", "sites"];
    private static readonly string[] ClusterKeys = ["name", "network", "wan_encryption", "idle_timeout"];
    private static readonly string[] SubmitKeys = ["wan", "lan"];
    private static readonly string[] ManagerKeys = ["kind", "cpus"];
    private static readonly string[] SiteKeys =
        ["access", "scheduler", "partition", "queue", "walltime", "submit_options", "min", "max", "wan", "lan", "work_dir"];
    private static readonly string[] SshKeys = ["host", "user", "port", "identity", "options"];

    /// <summary>Reads and checks <paramref name="path"/>.</summary>
    /// <exception cref="ConfigException">The file is wrong; the message has the line.</exception>
    /// <exception cref="UserException">The file is missing or unreadable.</exception>
    public static PersonalClusterSpec Load(string path) => Read(TomlDocument.Load(path), System.IO.Path.GetFullPath(path));

    /// <summary>Parses and checks the text of a personal-cluster file; <paramref name="file"/> is used in messages.</summary>
    public static PersonalClusterSpec Parse(string text, string file = "cluster.toml") =>
        Read(TomlDocument.Parse(text, file), System.IO.Path.GetFullPath(file));

    private static PersonalClusterSpec Read(TomlDocument document, string fullPath)
    {
        var root = document.Root;
        foreach (var value in root.Values)
        {
            throw value.Error($"unknown key '{value.Key}': keys belong under [cluster], [submit], [manager] or [sites.NAME]");
        }

        foreach (var (tableName, table) in root.Tables)
        {
            if (!RootTables.Contains(tableName))
            {
                throw new ConfigException(document.File, LineOf(table),
                    $"unknown table [{table.Name}]: the tables are [cluster], [submit], [manager] and [sites.NAME] (with [sites.NAME.ssh])");
            }
        }

        var cluster = root.GetTable("cluster")
            ?? throw new ConfigException(document.File, 0, "no [cluster] table: a personal-cluster file starts with [cluster] name = \"...\" network = \"100.64.0.0/16\"");
        CheckKeys(cluster, ClusterKeys);
        var nameValue = Required(cluster, "name", "the cluster name, like name = \"mycluster\"");
        var name = nameValue.AsString();
        if (!DnsLabel.IsValid(name))
        {
            throw nameValue.Error($"cluster name '{name}' is not allowed: use {DnsLabel.Rule}");
        }

        var networkValue = Required(cluster, "network", "the private network of all VIPs, like network = \"100.64.0.0/16\"");
        if (!IPv4Cidr.TryParse(networkValue.AsString(), out var network, out var networkError))
        {
            throw networkValue.Error(networkError);
        }

        if (!VirtualNetwork.IsValid(network, VirtualNetwork.DefaultImageBase, out var networkReason))
        {
            throw networkValue.Error(networkReason);
        }

        var wanEncryption = cluster.GetValue("wan_encryption")?.AsBoolean() ?? true;
        var idle = TimeSpan.FromSeconds(Integer(cluster.GetValue("idle_timeout"), 600, 1, 7 * 24 * 3600));

        var submitTable = root.GetTable("submit");
        SubmitHostSpec submit;
        if (submitTable is null)
        {
            submit = new SubmitHostSpec(new Endpoint("127.0.0.1", null), new Endpoint("127.0.0.1", null));
        }
        else
        {
            CheckKeys(submitTable, SubmitKeys);
            submit = new SubmitHostSpec(
                ReadEndpoint(submitTable.GetValue("wan")) ?? new Endpoint("127.0.0.1", null),
                ReadEndpoint(submitTable.GetValue("lan")) ?? new Endpoint("127.0.0.1", null));
        }

        var manager = new ManagerSpec(ManagerKind.Slurm, 1);
        if (root.GetTable("manager") is { } managerTable)
        {
            CheckKeys(managerTable, ManagerKeys);
            var kind = managerTable.GetValue("kind") is { } k
                ? k.AsString() switch
                {
                    "slurm" => ManagerKind.Slurm,
                    "none" => ManagerKind.None,
                    var other => throw k.Error($"kind '{other}' is not a job manager Isthmus runs: use \"slurm\" or \"none\""),
                }
                : ManagerKind.Slurm;
            manager = new ManagerSpec(kind, (int)Integer(managerTable.GetValue("cpus"), 1, 1, 4096));
        }

        var sitesTable = root.GetTable("sites")
            ?? throw new ConfigException(document.File, 0, "no sites: add at least one [sites.NAME] table (access = \"local\" or \"ssh\")");
        foreach (var value in sitesTable.Values)
        {
            throw value.Error($"unknown key '{value.Key}' in [sites]: each site is a table, [sites.NAME]");
        }

        var sites = new List<SiteSpec>();
        var index = 0;
        foreach (var (siteName, table) in sitesTable.Tables)
        {
            if (!DnsLabel.IsValid(siteName))
            {
                throw new ConfigException(document.File, LineOf(table), $"site name '{siteName}' is not allowed: use {DnsLabel.Rule}");
            }

            if (siteName == PersonalClusterSpec.HomeSite)
            {
                throw new ConfigException(document.File, LineOf(table),
                    $"site name '{siteName}' is taken by the submission host; choose another name");
            }

            sites.Add(ReadSite(siteName, table, index++));
        }

        if (sites.Count == 0)
        {
            throw new ConfigException(document.File, LineOf(sitesTable), "no sites: add at least one [sites.NAME] table");
        }

        return new PersonalClusterSpec(fullPath, name, network, wanEncryption, idle, submit, manager, sites);
    }

    private static SiteSpec ReadSite(string name, TomlTable table, int index)
    {
        foreach (var (key, node) in table.Entries)
        {
            if (node is TomlTable sub && key != "ssh")
            {
                throw new ConfigException(table.File, LineOf(sub), $"unknown table [{sub.Name}]: a site has only [sites.{name}.ssh]");
            }
        }

        CheckKeys(table, SiteKeys, allowTables: true);
        var accessValue = table.GetValue("access");
        var access = accessValue?.AsString() switch
        {
            null or "local" => AccessKind.Local,
            "ssh" => AccessKind.Ssh,
            var other => throw accessValue!.Error($"access '{other}' is not known: use \"local\" or \"ssh\" (with a [sites.{name}.ssh] table)"),
        };

        var sshTable = table.GetTable("ssh");
        SshSpec? ssh = null;
        if (access == AccessKind.Ssh)
        {
            if (sshTable is null)
            {
                throw new ConfigException(table.File, LineOf(table), $"site '{name}' has access = \"ssh\" but no [sites.{name}.ssh] table with host = \"...\"");
            }

            CheckKeys(sshTable, SshKeys);
            var host = Required(sshTable, "host", "the head node, like host = \"login.example.org\"").AsString();
            ssh = new SshSpec(host, sshTable.GetValue("user")?.AsString(), (int)Integer(sshTable.GetValue("port"), 22, 1, 65535),
                sshTable.GetValue("identity")?.AsString(), sshTable.GetValue("options")?.AsStringArray() ?? []);
        }
        else if (sshTable is not null)
        {
            throw new ConfigException(table.File, LineOf(sshTable), $"[sites.{name}.ssh] is only used with access = \"ssh\"");
        }

        var schedulerValue = table.GetValue("scheduler");
        var scheduler = schedulerValue?.AsString() switch
        {
            null or "local" => SchedulerKind.Local,
            "slurm" => SchedulerKind.Slurm,
            "sge" => SchedulerKind.Sge,
            var other => throw schedulerValue!.Error($"scheduler '{other}' is not known: use \"slurm\", \"sge\" or \"local\" (a fork on the head node)"),
        };

        var walltimeValue = table.GetValue("walltime");
        var walltime = walltimeValue?.AsString();
        if (walltime is not null && !WalltimePattern().IsMatch(walltime))
        {
            throw walltimeValue!.Error($"walltime '{walltime}' is not [D-]HH:MM:SS or MM (like \"01:30:00\")");
        }

        var minValue = table.GetValue("min");
        var min = (int)Integer(minValue, 1, 0, 1000);
        var maxValue = table.GetValue("max");
        var max = (int)Integer(maxValue, min, 0, 1000);
        if (max < min)
        {
            throw (maxValue ?? minValue)!.Error($"max ({max}) is below min ({min})");
        }

        var wan = ReadEndpoint(table.GetValue("wan"));
        var lan = ReadEndpoint(table.GetValue("lan"));
        if (access == AccessKind.Ssh)
        {
            // A free port can only be found on this machine; a remote router needs ports the user chose.
            foreach (var (key, endpoint) in new[] { ("wan", wan), ("lan", lan) })
            {
                if (endpoint is not { Port: not null })
                {
                    throw new ConfigException(table.File, table.GetValue(key)?.Line ?? LineOf(table),
                        $"site '{name}' is reached over ssh, so '{key}' must be HOST:PORT (where its router listens at the head node)");
                }
            }
        }

        // Local sites default to their own loopback address, like 'isthmus demo': 127.0.0.2, 127.0.0.3, …
        var localLan = new Endpoint($"127.0.0.{2 + index}", null);
        // 'queue' is Grid Engine's word for what Slurm calls a partition: either key, not both.
        var partitionValue = table.GetValue("partition");
        var queueValue = table.GetValue("queue");
        if (partitionValue is not null && queueValue is not null)
        {
            throw queueValue.Error($"site '{name}' has both 'partition' and 'queue': they are the same setting, keep one");
        }

        return new SiteSpec(name, access, ssh, scheduler, (partitionValue ?? queueValue)?.AsString(), walltime,
            table.GetValue("submit_options")?.AsStringArray() ?? [], min, max,
            wan ?? new Endpoint("127.0.0.1", null), lan ?? localLan, table.GetValue("work_dir")?.AsString());
    }

    private static Endpoint? ReadEndpoint(TomlValue? value)
    {
        if (value is null)
        {
            return null;
        }

        var text = value.AsString();
        if (!text.Contains(':', StringComparison.Ordinal))
        {
            return text.Length > 0 ? new Endpoint(text, null) : throw value.Error($"'{value.Key}' is empty: use HOST or HOST:PORT");
        }

        return HostPort.TryParse(text, out var hp, out var error) ? new Endpoint(hp.Host, hp.Port)
            : throw value.Error($"{value.Key}: {error} (use HOST, or HOST:PORT)");
    }

    private static long Integer(TomlValue? value, long fallback, long min, long max)
    {
        if (value is null)
        {
            return fallback;
        }

        var n = value.AsInteger();
        return n >= min && n <= max ? n
            : throw value.Error(string.Create(CultureInfo.InvariantCulture, $"'{value.Key}' must be between {min} and {max}, not {n}"));
    }

    private static void CheckKeys(TomlTable table, string[] allowed, bool allowTables = false)
    {
        foreach (var (key, node) in table.Entries)
        {
            if (node is TomlTable sub)
            {
                if (!allowTables)
                {
                    throw new ConfigException(table.File, LineOf(sub), $"unknown table [{sub.Name}]");
                }

                continue;
            }

            if (!allowed.Contains(key))
            {
                throw node.Error($"unknown key '{key}' in [{table.Name}] (the keys are {string.Join(", ", allowed)})");
            }
        }
    }

    private static TomlValue Required(TomlTable table, string key, string hint) =>
        table.GetValue(key) ?? throw new ConfigException(table.File, LineOf(table), $"[{table.Name}] has no '{key}' ({hint})");

    private static int LineOf(TomlTable table) =>
        table.Line > 0 ? table.Line : table.Entries.Select(e => e.Value is TomlTable t ? LineOf(t) : e.Value.Line).FirstOrDefault();

    [GeneratedRegex(@"^(\d+-)?\d{1,3}(:\d\d){0,2}$")]
    private static partial Regex WalltimePattern();
}
