using BenchmarkDotNet.Attributes;
using Isthmus.Core.Wire;

namespace Isthmus.Benchmarks;

/// <summary>The agent's per-connect work on the shim's request and answer.</summary>
[MemoryDiagnoser]
public class ShimMessageBenchmarks
{
    private readonly byte[] _request = new byte[ShimRequest.Size];
    private readonly byte[] _response = new byte[ShimResponse.Size];

    [GlobalSetup]
    public void Setup() => new ShimRequest(ShimOp.Connect, true, new VirtualEndpoint(0x64400202, 6379), 0x7F640102, 40000).Write(_request);

    [Benchmark]
    public bool ParseRequest() => ShimRequest.TryParse(_request, out _);

    [Benchmark]
    public void WriteResponse() => new ShimResponse(0, new VirtualEndpoint(0x64400202, 6379)).Write(_response);
}
