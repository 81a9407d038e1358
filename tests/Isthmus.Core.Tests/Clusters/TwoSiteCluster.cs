using Isthmus.Cluster;
using Isthmus.Core.Addressing;
using Isthmus.Core.Security;

namespace Isthmus.Core.Tests.Clusters;

/// <summary>A scratch cluster "lab" with sites west and east: router identities for TLS tests.</summary>
internal sealed class TwoSiteCluster : IDisposable
{
    private readonly ScratchDirectory _scratch = new();

    public TwoSiteCluster()
    {
        Directory = ClusterCreator.New(_scratch.Combine("c"), IPv4Cidr.Parse("100.64.0.0/16"), "lab");
        ClusterCreator.AddSite(Directory.Path, "west", HostPort.Parse("127.0.0.1:7000"), HostPort.Parse("127.0.0.1:7001"));
        ClusterCreator.AddSite(Directory.Path, "east", HostPort.Parse("127.0.0.1:7100"), HostPort.Parse("127.0.0.1:7101"));
    }

    public ClusterDirectory Directory { get; }

    public ScratchDirectory Scratch => _scratch;

    public void Dispose() => _scratch.Dispose();
}
