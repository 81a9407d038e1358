using BenchmarkDotNet.Attributes;
using Isthmus.Core.Wire;

namespace Isthmus.Benchmarks;

/// <summary>Per-datagram work on datagram legs and peer links: build a frame, parse its header, read frames off a stream.</summary>
[MemoryDiagnoser]
public class LinkFrameBenchmarks
{
    private const int FramesPerStream = 256;
    private readonly VirtualEndpoint _source = new(0x64400102, 40000);
    private readonly VirtualEndpoint _destination = new(0x64400202, 11211);
    private byte[] _payload = null!;
    private byte[] _frame = null!;
    private byte[] _stream = null!;

    [Params(64, 1400)]
    public int PayloadBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[PayloadBytes];
        Random.Shared.NextBytes(_payload);
        _frame = LinkFrame.Datagram(_source, _destination, _payload);
        _stream = [.. Enumerable.Range(0, FramesPerStream).SelectMany(_ => _frame)];
    }

    [Benchmark]
    public byte[] BuildDatagramFrame() => LinkFrame.Datagram(_source, _destination, _payload);

    [Benchmark]
    public bool ParseDatagramHeader() => LinkFrame.TryParseDatagram(_frame.AsSpan(LinkFrame.PrefixSize), out _, out _, out _);

    /// <summary>
    /// The reader's loop over <see cref="FramesPerStream"/> back-to-back frames (as several arrive in one read);
    /// the allocation figure includes the reader's own 256 KiB buffer, made once per link, shared by the frames.
    /// </summary>
    [Benchmark(OperationsPerInvoke = FramesPerStream)]
    public async Task<int> ReadFramesFromStream()
    {
        var count = 0;
        var reader = new LinkFrameReader(new MemoryStream(_stream, writable: false));
        await reader.RunAsync((_, body) => count += body.Length, CancellationToken.None).ConfigureAwait(false);
        return count;
    }
}
