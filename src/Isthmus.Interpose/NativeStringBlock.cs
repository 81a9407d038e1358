using System.Runtime.InteropServices;
using System.Text;

namespace Isthmus.Interpose;

/// <summary>
/// The NUL-terminated strings and NULL-terminated pointer arrays that execve and posix_spawn take, in
/// unmanaged memory that stays put (the GC may move managed arrays); everything is freed on dispose.
/// </summary>
internal sealed class NativeStringBlock : IDisposable
{
    private readonly List<nint> _allocations = [];

    /// <summary>A copy of <paramref name="value"/> as UTF-8 with a terminating NUL.</summary>
    public nint Utf8(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value + "\0");
        var p = Allocate(bytes.Length);
        Marshal.Copy(bytes, 0, p, bytes.Length);
        return p;
    }

    /// <summary>A <c>char *[]</c> of the values, ended by NULL (argv, envp).</summary>
    public nint PointerArray(IReadOnlyList<string> values)
    {
        var array = Allocate(nint.Size * (values.Count + 1));
        for (var i = 0; i < values.Count; i++)
        {
            Marshal.WriteIntPtr(array, i * nint.Size, Utf8(values[i]));
        }

        Marshal.WriteIntPtr(array, values.Count * nint.Size, 0);
        return array;
    }

    /// <summary>envp: "NAME=VALUE" for each entry.</summary>
    public nint Environment(IReadOnlyDictionary<string, string> environment) =>
        PointerArray(environment.Select(kv => kv.Key + "=" + kv.Value).ToList());

    /// <summary>Uninitialised memory of <paramref name="size"/> bytes, freed with the block.</summary>
    public nint Allocate(int size)
    {
        var p = Marshal.AllocHGlobal(size);
        _allocations.Add(p);
        return p;
    }

    public void Dispose()
    {
        foreach (var p in _allocations)
        {
            Marshal.FreeHGlobal(p);
        }

        _allocations.Clear();
    }
}
