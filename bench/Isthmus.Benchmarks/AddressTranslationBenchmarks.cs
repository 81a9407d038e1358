using BenchmarkDotNet.Attributes;
using Isthmus.Core.Addressing;

namespace Isthmus.Benchmarks;

/// <summary>VIP ↔ loopback image translation, done on every connect, accept and datagram.</summary>
[MemoryDiagnoser]
public class AddressTranslationBenchmarks
{
    private readonly VirtualNetwork _network = new(VirtualNetwork.DefaultNetwork);
    private readonly uint _vip = 0x64400202;
    private readonly uint _image = 0x7F640202;

    [Benchmark]
    public uint VipToImage() => _network.ToImage(_vip);

    [Benchmark]
    public uint ImageToVip() => _network.FromImage(_image);

    [Benchmark]
    public bool ClassifyAddress() => _network.IsVirtual(_vip) && _network.IsImage(_image);
}
