using Isthmus.Fuzz.Targets;

namespace Isthmus.Fuzz;

/// <summary>Every parser of bytes that cross a wire (and the configuration parser), by name.</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        WireTargets.LegHeaderTarget,
        WireTargets.LegHeaderRoundTrip,
        WireTargets.LegReplyTarget,
        LinkFrameTargets.Reader,
        LinkFrameTargets.ReaderRoundTrip,
        ControlTargets.Receive,
        ControlTargets.RoundTrip,
        ShimTargets.Request,
        ShimTargets.RequestRoundTrip,
        ShimTargets.Response,
        DirectoryTargets.Decode,
        DirectoryTargets.RoundTrip,
        SocksTargets.Handshake,
        SocksTargets.UdpHeader,
        ConfigTargets.Toml,
        ConfigTargets.TomlRoundTrip,
        ConfigTargets.ClusterFileRoundTrip,
        ConfigTargets.Addresses,
        EnrolmentTargets.Signature,
        DnsTargets.Query,
        DnsTargets.QueryRoundTrip,
    ];

    public static FuzzTarget Find(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"no fuzz target '{name}'; targets: {string.Join(", ", All.Select(t => t.Name))}", nameof(name));
}
