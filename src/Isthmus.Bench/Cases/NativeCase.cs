namespace Isthmus.Bench.Cases;

/// <summary>No overlay: the client dials the server's own address (the best the links allow).</summary>
public sealed class NativeCase(string name, string description, string client, string server, string target) : BenchCase
{
    public const string GatewayToGateway = "native-gw";
    public const string FlatLan = "native-flat";

    public override string Name => name;

    public override string Description => description;

    public override string? Reference => null;

    public override string ClientNode => client;

    public override string ServerNode => server;

    public override string Target => target;

    public static NativeCase Gateways() => new(GatewayToGateway, "native gwa -> gwb over the WAN router", "gwa", "gwb", BenchTopology.GatewayBWan);

    public static NativeCase Flat() => new(FlatLan, "native fa -> fb on one bridged LAN", "fa", "fb", BenchTopology.FlatB);
}
