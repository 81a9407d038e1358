using Isthmus.Core.Config;
using Xunit;

namespace Isthmus.Core.Tests.Config;

public class TomlDocumentTests
{
    private const string Valid = """
        # a comment line
        top = "level"   # trailing comment

        [cluster]
        name = "isthmus"
        "quoted key" = 'literal \n no escapes'
        escapes = "tab\tquote\"backslash\\ nl\n u\u00e9 U\U0001F600 hash # not a comment"
        bare-key_2 = 42
        negative = -17
        plus = +3
        big = 9_223_372_036_854_775_807
        small = -9223372036854775808
        hex = 0xFF
        oct = 0o17
        bin = 0b101
        yes = true
        no = false
        strings = ["a", 'b', "c,d"]
        ints = [1, 2, 3,]
        empty = []
        nested = [[1, 2], ["x"]]
        multi = [
          "one",   # comment inside an array
          "two",
        ]
        after = "multi"

        [ sites . "a" ]
        subnet = "100.64.1.0/24"

        [sites.b]
        subnet = ""
        """;

    [Fact]
    public void Parses_every_supported_form()
    {
        var doc = TomlDocument.Parse(Valid, "test.toml");
        Assert.Equal("level", doc.Root.GetValue("top")!.AsString());
        var cluster = doc.Root.GetTable("cluster")!;
        Assert.Equal(4, cluster.Line);
        Assert.Equal("isthmus", cluster.GetValue("name")!.AsString());
        Assert.Equal(5, cluster.GetValue("name")!.Line);
        Assert.Equal("literal \\n no escapes", cluster.GetValue("quoted key")!.AsString());
        Assert.Equal("tab\tquote\"backslash\\ nl\n u\u00e9 U\U0001F600 hash # not a comment", cluster.GetValue("escapes")!.AsString());
        Assert.Equal(42, cluster.GetValue("bare-key_2")!.AsInteger());
        Assert.Equal(-17, cluster.GetValue("negative")!.AsInteger());
        Assert.Equal(3, cluster.GetValue("plus")!.AsInteger());
        Assert.Equal(long.MaxValue, cluster.GetValue("big")!.AsInteger());
        Assert.Equal(long.MinValue, cluster.GetValue("small")!.AsInteger());
        Assert.Equal(255, cluster.GetValue("hex")!.AsInteger());
        Assert.Equal(15, cluster.GetValue("oct")!.AsInteger());
        Assert.Equal(5, cluster.GetValue("bin")!.AsInteger());
        Assert.True(cluster.GetValue("yes")!.AsBoolean());
        Assert.False(cluster.GetValue("no")!.AsBoolean());
        Assert.Equal(["a", "b", "c,d"], cluster.GetValue("strings")!.AsStringArray());
        Assert.Equal([1L, 2L, 3L], cluster.GetValue("ints")!.AsArray().Select(v => v.AsInteger()));
        Assert.Empty(cluster.GetValue("empty")!.AsArray());
        Assert.Equal(2, cluster.GetValue("nested")!.AsArray().Count);
        Assert.Equal(["one", "two"], cluster.GetValue("multi")!.AsStringArray());
        Assert.Equal(26, cluster.GetValue("after")!.Line);

        var sites = doc.Root.GetTable("sites")!;
        Assert.Equal(0, sites.Line);
        Assert.Equal(["a", "b"], sites.Keys);
        Assert.Equal(28, sites.GetTable("a")!.Line);
        Assert.Equal("sites.a", sites.GetTable("a")!.Name);
        Assert.Equal("", sites.GetTable("b")!.GetValue("subnet")!.AsString());
        Assert.Equal(["top", "cluster", "sites"], doc.Root.Keys);
    }

    [Fact]
    public void Keeps_key_order()
    {
        var doc = TomlDocument.Parse("[t]\nz = 1\na = 2\nm = 3\n");
        Assert.Equal(["z", "a", "m"], doc.Root.GetTable("t")!.Keys);
    }

    [Fact]
    public void Accepts_crlf_bom_empty_and_no_final_newline()
    {
        Assert.Empty(TomlDocument.Parse("").Root.Keys);
        Assert.Empty(TomlDocument.Parse("# only a comment").Root.Keys);
        var doc = TomlDocument.Parse("\uFEFF[t]\r\nk = 1\r\n\r\nj = \"x\"");
        Assert.Equal(4, doc.Root.GetTable("t")!.GetValue("j")!.Line);
    }

    [Fact]
    public void A_super_table_may_be_defined_after_a_sub_table()
    {
        var doc = TomlDocument.Parse("[a.b]\nx = 1\n[a]\ny = 2\n");
        var a = doc.Root.GetTable("a")!;
        Assert.Equal(3, a.Line);
        Assert.Equal(2, a.GetValue("y")!.AsInteger());
        Assert.Equal(1, a.GetTable("b")!.GetValue("x")!.AsInteger());
    }

    [Theory]
    [InlineData("a = 1\na = 2", 2, "duplicate key 'a' (first on line 1)")]
    [InlineData("[t]\n[u]\n[t]", 3, "duplicate table [t] (first on line 1)")]
    [InlineData("[t.u]\n[t.u]", 2, "duplicate table [t.u] (first on line 1)")]
    [InlineData("[t]\nu = 1\n[t.u]", 3, "'u' is already a value (line 2), not a table")]
    [InlineData("[t.u]\n[t]\nu = 1", 3, "duplicate key 'u': it is already a table (first on line 1)")]
    [InlineData("[t]\nk = \"unterminated", 2, "unterminated string")]
    [InlineData("k = 'unterminated\nj = 1", 1, "unterminated string")]
    [InlineData("\n\nk = \"bad \\q escape\"", 3, "unknown escape '\\q'")]
    [InlineData("k = \"\\u12\"", 1, "bad escape '\\u'")]
    [InlineData("k = \"\\uD800\"", 1, "bad escape '\\u'")]
    [InlineData("k = \"\"\"multi\"\"\"", 1, "multi-line strings")]
    [InlineData("k = '''multi'''", 1, "multi-line strings")]
    [InlineData("k = 1.5", 1, "floats are not supported")]
    [InlineData("k = 1e6", 1, "floats are not supported")]
    [InlineData("k = inf", 1, "floats are not supported")]
    [InlineData("k = 1979-05-27", 1, "dates and times are not supported")]
    [InlineData("k = 07:32:00", 1, "dates and times are not supported")]
    [InlineData("k = 012", 1, "leading zeros are not allowed")]
    [InlineData("k = 1__2", 1, "an '_' must be between two digits")]
    [InlineData("k = _1", 1, "is not a value")]
    [InlineData("k = 1_", 1, "an '_' must be between two digits")]
    [InlineData("k = 9223372036854775808", 1, "out of range")]
    [InlineData("k = 0xG1", 1, "'0xG1' is not an integer")]
    [InlineData("k = 12abc", 1, "'12abc' is not an integer")]
    [InlineData("k = yes", 1, "'yes' is not a value")]
    [InlineData("k = { a = 1 }", 1, "inline tables")]
    [InlineData("[[t]]", 1, "arrays of tables")]
    [InlineData("a.b = 1", 1, "dotted keys are not supported")]
    [InlineData("k", 1, "expected '=' after key 'k'")]
    [InlineData("k =", 1, "missing value for 'k'")]
    [InlineData("k = # comment", 1, "missing value for 'k'")]
    [InlineData("k = 1 2", 1, "expected the end of the line")]
    [InlineData("k = \"a\" \"b\"", 1, "expected the end of the line")]
    [InlineData("[t] k = 1", 1, "expected the end of the line")]
    [InlineData("= 1", 1, "'=' cannot start a key")]
    [InlineData("[t\nk = 1", 1, "unterminated table header")]
    [InlineData("[]", 1, "']' cannot start a table name")]
    [InlineData("[t u]", 1, "expected '.' or ']'")]
    [InlineData("k = [1, 2\nj = 3", 2, "expected ',' or ']'")]
    [InlineData("k = [1,\n2,\n", 1, "unterminated array")]
    [InlineData("k = [,]", 1, "unexpected ','")]
    [InlineData("k = \"a\u0001b\"", 1, "control character U+0001")]
    [InlineData("k = 1\rj = 2", 1, "carriage return without a line feed")]
    public void Errors_name_the_line(string text, int line, string reason)
    {
        var e = Assert.Throws<ConfigException>(() => TomlDocument.Parse(text, "f.toml"));
        Assert.Equal(line, e.Line);
        Assert.Contains(reason, e.Reason, StringComparison.Ordinal);
        Assert.Equal($"f.toml:{line}: {e.Reason}", e.Message);
        Assert.Equal("f.toml", e.File);
    }

    [Fact]
    public void Wrong_types_name_the_key_and_line()
    {
        var doc = TomlDocument.Parse("[t]\n\nport = \"80\"\nflag = 1\nlist = [1]\n", "f.toml");
        var t = doc.Root.GetTable("t")!;
        Assert.Equal("f.toml:3: 'port' must be an integer, not a string", Assert.Throws<ConfigException>(() => t.GetValue("port")!.AsInteger()).Message);
        Assert.Equal("f.toml:4: 'flag' must be true or false, not an integer", Assert.Throws<ConfigException>(() => t.GetValue("flag")!.AsBoolean()).Message);
        Assert.Equal("f.toml:5: 'list' must be an array of strings", Assert.Throws<ConfigException>(() => t.GetValue("list")!.AsStringArray()).Message);
        Assert.Throws<ConfigException>(() => doc.Root.GetValue("t"));
        Assert.Throws<ConfigException>(() => t.GetTable("port"));
        Assert.Null(t.GetValue("absent"));
    }

    [Fact]
    public void Writer_output_parses_back()
    {
        var text = new TomlWriter()
            .Comment("header line 1\nheader line 2")
            .BlankLine()
            .Table("cluster")
            .Value("name", "with \"quotes\", \\ and \t\n\u0001 controls")
            .Value("n", -5L)
            .Value("flag", true)
            .Value("list", ["x", "y\"z"])
            .Table("sites", "needs quoting.here")
            .Value("odd key", "v")
            .ToString();
        var doc = TomlDocument.Parse(text);
        var cluster = doc.Root.GetTable("cluster")!;
        Assert.Equal("with \"quotes\", \\ and \t\n\u0001 controls", cluster.GetValue("name")!.AsString());
        Assert.Equal(-5, cluster.GetValue("n")!.AsInteger());
        Assert.True(cluster.GetValue("flag")!.AsBoolean());
        Assert.Equal(["x", "y\"z"], cluster.GetValue("list")!.AsStringArray());
        Assert.Equal("v", doc.Root.GetTable("sites")!.GetTable("needs quoting.here")!.GetValue("odd key")!.AsString());
        Assert.StartsWith("# header line 1\n# header line 2\n\n[cluster]\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_is_a_user_error()
    {
        var e = Assert.Throws<UserException>(() => TomlDocument.Load("/nonexistent/dir/x.toml"));
        Assert.Contains("/nonexistent/dir/x.toml not found", e.Message, StringComparison.Ordinal);
    }
}
