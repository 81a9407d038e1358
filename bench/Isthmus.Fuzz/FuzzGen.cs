using System.Buffers.Binary;
using CsCheck;

namespace Isthmus.Fuzz;

/// <summary>
/// Input generators shared by every target: random bytes, and valid encodings damaged the way a broken or
/// hostile peer damages them (bit flips, truncation, insertion, repeated chunks, length fields set to
/// boundary values such as 0, the limit, the limit + 1 and 4 GiB - 1).
/// </summary>
public static class FuzzGen
{
    private static readonly uint[] Interesting =
    [
        0, 1, 2, 4, 5, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 65507, 65508, 65519, 65520,
        (4 << 20) - 1, 4 << 20, (4 << 20) + 1, (4 << 20) + 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
    ];

    /// <summary>Random bytes, up to <paramref name="maxLength"/>.</summary>
    public static Gen<byte[]> Garbage(int maxLength) => Gen.Byte.Array[0, maxLength];

    /// <summary>A valid input with 1..6 mutations applied.</summary>
    public static Gen<byte[]> Mutated(Gen<byte[]> valid) =>
        Gen.Select(valid, Gen.Select(Gen.Int[0, 7], Gen.Int[0, int.MaxValue], Gen.UInt, Gen.Byte.Array[1, 24]).Array[1, 6],
            (input, ops) => Apply(input, ops));

    /// <summary>The usual mix: mostly mutated valid inputs, some valid ones, some garbage.</summary>
    public static Gen<byte[]> Mix(Gen<byte[]> valid, int maxGarbage) =>
        Gen.Frequency((2, Garbage(maxGarbage)), (1, valid), (6, Mutated(valid)));

    /// <summary>Valid inputs preceded by a well-formed prefix repeated many times (deep nesting, long lists).</summary>
    public static Gen<byte[]> Repeated(byte[] unit, int maxCount, byte[]? tail = null) =>
        Gen.Int[1, maxCount].Select(n =>
        {
            var result = new byte[(unit.Length * n) + (tail?.Length ?? 0)];
            for (var i = 0; i < n; i++)
            {
                unit.CopyTo(result, i * unit.Length);
            }

            tail?.CopyTo(result, unit.Length * n);
            return result;
        });

    private static byte[] Apply(byte[] input, (int Op, int Position, uint Value, byte[] Bytes)[] ops)
    {
        var data = new List<byte>(input);
        foreach (var (op, position, value, bytes) in ops)
        {
            var at = data.Count == 0 ? 0 : position % (data.Count + 1);
            switch (op)
            {
                case 0 when data.Count > 0: // flip one bit
                    data[at % data.Count] ^= (byte)(1 << (int)(value % 8));
                    break;
                case 1 when data.Count > 0: // set one byte
                    data[at % data.Count] = (byte)value;
                    break;
                case 2: // truncate
                    data.RemoveRange(at, data.Count - at);
                    break;
                case 3: // insert bytes
                    data.InsertRange(at, bytes);
                    break;
                case 4 when data.Count > 0: // delete a chunk
                    data.RemoveRange(at % data.Count, Math.Min(bytes.Length, data.Count - (at % data.Count)));
                    break;
                case 5: // a boundary value as a big-endian u32 (length fields of every framing here)
                case 6: // ... or little-endian (the shim protocol)
                    var word = new byte[4];
                    var interesting = Interesting[value % Interesting.Length];
                    if (op == 5)
                    {
                        BinaryPrimitives.WriteUInt32BigEndian(word, interesting);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt32LittleEndian(word, interesting);
                    }

                    for (var i = 0; i < 4; i++)
                    {
                        if (at + i < data.Count)
                        {
                            data[at + i] = word[i];
                        }
                        else
                        {
                            data.Add(word[i]);
                        }
                    }

                    break;
                case 7 when data.Count > 0: // repeat a chunk (lists, nesting)
                    var start = at % data.Count;
                    var chunk = data.GetRange(start, Math.Min(1 + (int)(value % 16), data.Count - start));
                    for (var i = 0; i < 1 + (bytes.Length * 8); i++)
                    {
                        data.InsertRange(start, chunk);
                    }

                    break;
                default:
                    break;
            }
        }

        return [.. data];
    }
}
