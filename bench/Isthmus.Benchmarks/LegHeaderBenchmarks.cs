using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Isthmus.Core.Wire;

namespace Isthmus.Benchmarks;

/// <summary>Work every hop does once per stream: write a leg header (HMAC), parse and verify one.</summary>
[MemoryDiagnoser]
public class LegHeaderBenchmarks
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _buffer = new byte[LegHeader.Size];
    private LegHeader _header = null!;
    private byte[] _raw = null!;

    [GlobalSetup]
    public void Setup()
    {
        _header = new LegHeader(LegKind.TcpStream, 0, Guid.NewGuid(), new VirtualEndpoint(0x64400102, 40000),
            new VirtualEndpoint(0x64400202, 6379), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 42);
        _raw = _header.ToBytes(_key);
    }

    [Benchmark]
    public void Write() => _header.Write(_buffer, _key);

    [Benchmark]
    public bool ParseAndVerify() => LegHeader.TryParse(_raw, out _, out _) && LegHeader.VerifyMac(_raw, _key);
}
