using System.Globalization;

namespace Isthmus.Bench;

/// <summary>What every case and tool of one run shares: the topology, the work directory, the processes it started.</summary>
public sealed class BenchContext
{
    private readonly List<BenchProcess> _processes = [];
    private readonly Lock _lock = new();

    public BenchContext(BenchSettings settings, BenchTopology topology, string workDirectory, Action<string> log)
    {
        Settings = settings;
        Topology = topology;
        WorkDirectory = workDirectory;
        Log = log;
    }

    public BenchSettings Settings { get; }

    public BenchTopology Topology { get; }

    public string WorkDirectory { get; }

    public Action<string> Log { get; }

    /// <summary>Starts a program in the namespace of <paramref name="node"/>; the run stops it at the end if its owner has not.</summary>
    public BenchProcess Start(string label, string node, string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var p = BenchProcess.Start(label, Topology.Ns(node), file, args, Path.Combine(WorkDirectory, label + ".log"), environment);
        lock (_lock)
        {
            _processes.Add(p);
        }

        return p;
    }

    public async Task StopAsync(BenchProcess? process)
    {
        if (process is null)
        {
            return;
        }

        await process.StopAsync().ConfigureAwait(false);
        lock (_lock)
        {
            _processes.Remove(process);
        }
    }

    public async Task StopAllAsync()
    {
        List<BenchProcess> left;
        lock (_lock)
        {
            left = [.. _processes];
            _processes.Clear();
        }

        foreach (var p in Enumerable.Reverse(left))
        {
            await p.StopAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
    }

    /// <summary>Polls <c>ss</c> in the node's namespace until something listens on TCP <paramref name="port"/>.</summary>
    public async Task WaitListeningAsync(string node, int port, BenchProcess? owner, CancellationToken cancellationToken, double seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        var needle = ":" + port.ToString(CultureInfo.InvariantCulture) + " ";
        while (true)
        {
            var r = await Topology.TryInAsync(node, "ss", "-Hltn").ConfigureAwait(false);
            if (r.StandardOutput.Split('\n').Any(l => l.Contains(needle, StringComparison.Ordinal)))
            {
                return;
            }

            if (owner is { HasExited: true } || DateTime.UtcNow > deadline)
            {
                throw new BenchException($"nothing listens on port {port} in {node}{(owner is null ? "" : $" ({owner.Label}: {owner.Tail(8)})")}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }
}
