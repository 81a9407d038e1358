using Isthmus.Core;
using Isthmus.Core.Addressing;

namespace Isthmus.Node;

/// <summary>
/// The VIPs of other node agents on this host (same network namespace, same runtime directory): their
/// images are on our loopback too, so their programs are reached directly and must never get a UDP proxy
/// from us (a proxy there would catch the datagrams the other agent delivers, and loop them).
/// Refreshed at most every 2 s from the runtime directory.
/// </summary>
internal sealed class ColocatedAgents(string runtimeDirectory, string ownName)
{
    private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(2);
    private readonly object _lock = new();
    private HashSet<uint> _vips = [];
    private long _readAt = long.MinValue;

    public bool Holds(uint vip)
    {
        lock (_lock)
        {
            if (Environment.TickCount64 - _readAt > (long)MaxAge.TotalMilliseconds)
            {
                _vips = Read();
                _readAt = Environment.TickCount64;
            }

            return _vips.Contains(vip);
        }
    }

    private HashSet<uint> Read()
    {
        var result = new HashSet<uint>();
        var ownNetwork = NetworkNamespace(Environment.ProcessId);
        if (ownNetwork is null || !Directory.Exists(runtimeDirectory))
        {
            return result;
        }

        foreach (var path in Directory.EnumerateFiles(runtimeDirectory, "*.json"))
        {
            if (Path.GetFileNameWithoutExtension(path) == ownName)
            {
                continue;
            }

            try
            {
                var info = AgentInfo.Read(path);
                // Agents of other hosts may share the directory (a shared home, or test namespaces on one
                // machine): only one in our network namespace shares our loopback.
                if (NetworkNamespace(info.Pid) == ownNetwork && IPv4.TryParse(info.Vip, out var vip))
                {
                    result.Add(vip);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or UserException)
            {
                // Being written or removed right now, or not ours: skip it.
            }
        }

        return result;
    }

    private static string? NetworkNamespace(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/net").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
