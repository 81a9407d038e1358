using System.Text;
using CsCheck;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Config;

namespace Isthmus.Fuzz.Targets;

/// <summary>The TOML-subset parser, the cluster file on top of it, and the address parsers both use.</summary>
public static class ConfigTargets
{
    private const string Sample = """
        # a cluster file as 'isthmus cluster new' writes it
        [cluster]
        name = "lab"
        id = "0123456789abcdef"
        network = "100.64.0.0/16"
        image = "127.100.0.0"
        wan_encryption = true
        node_hostname = false

        [sites.west]
        subnet = "100.64.1.0/24"
        wan = "198.51.100.1:7000"
        lan = "192.0.2.1:7001"

        [sites."east"]
        subnet = '100.64.2.0/24'
        wan = "198.51.100.2:7000"
        lan = "192.0.2.2:7001"
        tags = ["a", "b\u00e9\t", 'c'] # trailing comment
        n = 0x_ff
        m = -9_223_372_036_854_775_808
        s = "\U0001F600 \"q\" \\"
        """;

    private static readonly Gen<string> Keys = Gen.Frequency((3, Gen.Char["abcdefgh_-0123"].Array[1, 8].Select(c => new string(c))), (1, Gen.String[1, 10]));

    private static readonly Gen<(string Key, object Value)> Entries = Gen.Select(Keys, Gen.Frequency(
        (3, Gen.String.Select(s => (object)s)), (2, Gen.Long.Select(l => (object)l)), (1, Gen.Bool.Select(b => (object)b)),
        (1, Gen.String.Array[0, 4].Select(a => (object)a))));

    private static readonly Gen<(string Table, (string Key, object Value)[] Entries)[]> Documents =
        Gen.Select(Keys, Entries.Array[0, 6]).Array[0, 4];

    private static readonly Gen<byte[]> Texts = Gen.Frequency(
        (3, Documents.Select(d => Encoding.UTF8.GetBytes(Write(d)))),
        (1, Gen.Const(Encoding.UTF8.GetBytes(Sample))),
        (1, FuzzGen.Repeated("["u8.ToArray(), 50_000, "]"u8.ToArray()).Select(b => (byte[])[.. "a = "u8, .. b])),
        (1, Gen.Select(Gen.Char["0123456789abcdefABCDEF"].Array[4, 8], Gen.Bool).Select((hex, big) =>
            Encoding.UTF8.GetBytes($"a = \"\\{(big ? 'U' : 'u')}{new string(hex)}\"\n"))));

    public static FuzzTarget Toml => new(
        "toml",
        FuzzGen.Mix(Texts, 400),
        input =>
        {
            var text = Encoding.UTF8.GetString(input);
            TomlDocument document;
            try
            {
                document = TomlDocument.Parse(text, "fuzz.toml");
            }
            catch (ConfigException e)
            {
                FuzzFailureException.Assert(e.Message.StartsWith("fuzz.toml", StringComparison.Ordinal), $"error without the file name: {e.Message}");
                FuzzFailureException.Assert(e.Line >= 0 && e.Line <= text.Count(c => c == '\n') + 1, $"error on line {e.Line} of a {text.Count(c => c == '\n') + 1}-line text");
                return;
            }

            try
            {
                _ = ClusterFile.FromDocument(document);
            }
            catch (UserException)
            {
                // ConfigException (file:line) or another one-line user error: both are the documented refusals.
            }
        },
        AllocationBudget: n => (256 << 10) + (512L * n));

    public static FuzzTarget TomlRoundTrip => new(
        "toml-roundtrip",
        Documents.Select(d => Encoding.UTF8.GetBytes(Write(d))),
        input =>
        {
            var text = Encoding.UTF8.GetString(input);
            var document = TomlDocument.Parse(text, "fuzz.toml");
            FuzzFailureException.Assert(Write(Read(document.Root)) == text, "write(parse(x)) != x");
        });

    public static FuzzTarget ClusterFileRoundTrip => new(
        "cluster-file-roundtrip",
        FuzzGen.Mix(Gen.Const(Encoding.UTF8.GetBytes(Sample)), 0),
        input =>
        {
            ClusterFile file;
            try
            {
                file = ClusterFile.Parse(Encoding.UTF8.GetString(input));
            }
            catch (UserException)
            {
                return;
            }

            FuzzFailureException.Assert(ClusterFile.Parse(file.ToToml()).Equals(file), "parse(write(parse(x))) != parse(x)");
        });

    public static FuzzTarget Addresses => new(
        "addresses",
        Gen.Frequency((2, Gen.String[0, 40].Select(Encoding.UTF8.GetBytes)),
            (3, FuzzGen.Mutated(Gen.OneOf(Gen.Const("100.64.1.0/24"u8.ToArray()), Gen.Const("198.51.100.1:7000"u8.ToArray()),
                Gen.Const("[2001:db8::1]:7000"u8.ToArray()), Gen.Const("head-1.example:65535"u8.ToArray()))))),
        input =>
        {
            var text = Encoding.UTF8.GetString(input);
            if (IPv4.TryParse(text, out var ip))
            {
                FuzzFailureException.Assert(IPv4.Format(ip) == text, "format(parse(x)) != x for a strict dotted quad");
            }

            if (IPv4Cidr.TryParse(text, out var cidr))
            {
                FuzzFailureException.Assert(IPv4Cidr.Parse(cidr.ToString()) == cidr, "parse(format(cidr)) != cidr");
            }

            if (HostPort.TryParse(text, out var hostPort))
            {
                FuzzFailureException.Assert(HostPort.Parse(hostPort.ToString()) == hostPort, "parse(format(host:port)) != host:port");
            }
        },
        AllocationBudget: n => 16384 + (64L * n));

    private static string Write((string Table, (string Key, object Value)[] Entries)[] document)
    {
        var writer = new TomlWriter();
        foreach (var (table, entries) in document.DistinctBy(t => t.Table))
        {
            writer.Table(table);
            foreach (var (key, value) in entries.DistinctBy(e => e.Key))
            {
                _ = value switch
                {
                    string s => writer.Value(key, s),
                    long l => writer.Value(key, l),
                    bool b => writer.Value(key, b),
                    string[] a => writer.Value(key, a),
                    _ => writer,
                };
            }
        }

        return writer.ToString();
    }

    private static (string Table, (string Key, object Value)[] Entries)[] Read(TomlTable root) =>
        [.. root.Tables.Select(t => (t.Key, t.Value.Values.Select(v => (v.Key, v.Kind switch
        {
            TomlValueKind.String => (object)v.AsString(),
            TomlValueKind.Integer => v.AsInteger(),
            TomlValueKind.Boolean => v.AsBoolean(),
            _ => v.AsStringArray().ToArray(),
        })).ToArray()))];
}
