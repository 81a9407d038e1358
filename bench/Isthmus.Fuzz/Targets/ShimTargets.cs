using CsCheck;
using Isthmus.Core.Wire;

namespace Isthmus.Fuzz.Targets;

/// <summary>The shim ↔ agent control messages: the agent's parser of the 32-byte request, and the answer's parser.</summary>
public static class ShimTargets
{
    private static readonly Gen<string> Names = Gen.Char[(char)0x21, (char)0x7E].Array[1, 253].Select(c => new string(c));

    public static readonly Gen<ShimRequest> Requests =
        Gen.Select(Gen.UShort[(ushort)ShimOp.Connect, (ushort)ShimOp.DirectPeer], Gen.Bool, Gen.UInt, Gen.UShort, Gen.UInt, Gen.UShort, Names)
            .Select((op, nonBlocking, dst, dstPort, src, srcPort, name) => new ShimRequest((ShimOp)op, nonBlocking,
                new VirtualEndpoint(dst, dstPort), src, srcPort, (ShimOp)op == ShimOp.ResolveName ? name : null));

    private static readonly Gen<ShimResponse> Responses =
        Gen.Select(Gen.Int, Gen.UInt, Gen.UShort, Gen.Frequency((1, Gen.Const((string?)null)), (1, Names.Select(n => (string?)n))))
            .Select((error, ip, port, name) => new ShimResponse(error, new VirtualEndpoint(ip, port), name?.Length > ShimResponse.MaxPayload ? name[..ShimResponse.MaxPayload] : name));

    private static byte[] Encode(ShimRequest request)
    {
        var bytes = new byte[request.Length];
        request.Write(bytes);
        return bytes;
    }

    private static byte[] Encode(ShimResponse response)
    {
        var bytes = new byte[response.Length];
        response.Write(bytes);
        return bytes;
    }

    public static FuzzTarget Request => new(
        "shim-request",
        FuzzGen.Mix(Requests.Select(Encode), 320),
        input =>
        {
            if (!ShimRequest.TryParse(input, out var request))
            {
                return;
            }

            FuzzFailureException.Assert(Enum.IsDefined(request.Op), $"op {request.Op} accepted");
            FuzzFailureException.Assert((request.Op == ShimOp.ResolveName) == (request.Name is not null), "a name only for RESOLVE_NAME");
            FuzzFailureException.Assert(ShimRequest.TryParse(Encode(request), out var again) && again == request, "parse(write(parse(x))) != parse(x)");
        },
        AllocationBudget: n => 4096 + (4L * n));

    public static FuzzTarget RequestRoundTrip => new(
        "shim-request-roundtrip",
        Requests.Select(Encode),
        input =>
        {
            FuzzFailureException.Assert(ShimRequest.TryParse(input, out var request), "a written request does not parse");
            FuzzFailureException.Assert(Encode(request).AsSpan().SequenceEqual(input), "write(parse(x)) != x");
        },
        AllocationBudget: n => 4096 + (4L * n));

    public static FuzzTarget Response => new(
        "shim-response",
        FuzzGen.Mix(Responses.Select(Encode), 300),
        input =>
        {
            if (ShimResponse.TryParse(input, out var response))
            {
                FuzzFailureException.Assert(response.Length == input.Length, "a response's length is not the datagram's");
                FuzzFailureException.Assert(ShimResponse.TryParse(Encode(response), out var again) && again == response, "parse(write(parse(x))) != parse(x)");
            }
        },
        AllocationBudget: n => 4096 + (4L * n));
}
