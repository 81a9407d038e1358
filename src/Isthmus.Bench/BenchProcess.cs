using System.Diagnostics;
using System.Text.RegularExpressions;
using Isthmus.Core.Native;

namespace Isthmus.Bench;

/// <summary>
/// A long-running program of the bench (router, agent, server, relay) started in a network namespace with
/// <c>ip netns exec</c>, which execs, so <see cref="Pid"/> is the program's own PID. Output goes to a log file
/// and the last lines stay in memory for error messages. Stopped by PID only: SIGTERM, then SIGKILL.
/// </summary>
public sealed class BenchProcess
{
    private const int KeptLines = 200;
    private readonly Process _process;
    private readonly Queue<string> _lines = new();
    private readonly Lock _lock = new();
    private readonly StreamWriter _log;
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Seen)> _waiters = [];

    private BenchProcess(string label, Process process, StreamWriter log)
    {
        Label = label;
        _process = process;
        _log = log;
    }

    public string Label { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public static BenchProcess Start(string label, string? netns, string file, IEnumerable<string> args, string logPath,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(netns is null ? file : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (netns is not null)
        {
            foreach (var a in new[] { "netns", "exec", netns, file })
            {
                info.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        log.WriteLine($"# {file} {string.Join(' ', info.ArgumentList)}");
        var process = Process.Start(info) ?? throw new BenchException($"cannot start {file}");
        process.StandardInput.Close();
        var p = new BenchProcess(label, process, log);
        process.OutputDataReceived += (_, e) => p.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => p.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return p;
    }

    /// <summary>The last lines the program wrote (stdout and stderr interleaved).</summary>
    public string Tail(int lines = 15)
    {
        lock (_lock)
        {
            return string.Join('\n', _lines.TakeLast(lines));
        }
    }

    public Task<string> WaitForLineAsync(Regex pattern, TimeSpan timeout, CancellationToken cancellationToken) =>
        WaitForLineAsync(pattern.IsMatch, timeout, cancellationToken);

    /// <summary>Waits until the program writes a matching line; fails with its last lines when it exits or the time is up.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            var already = _lines.FirstOrDefault(match);
            if (already is not null)
            {
                return already;
            }

            _waiters.Add((match, seen));
        }

        var exited = _process.WaitForExitAsync(cancellationToken);
        var first = await Task.WhenAny(seen.Task, exited, Task.Delay(timeout, cancellationToken)).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (first == seen.Task)
        {
            return await seen.Task.ConfigureAwait(false);
        }

        // The line may have arrived just before the exit.
        if (seen.Task.IsCompleted)
        {
            return await seen.Task.ConfigureAwait(false);
        }

        var why = first == exited ? $"exited with {_process.ExitCode}" : $"said nothing expected within {timeout.TotalSeconds:0} s";
        throw new BenchException($"{Label} {why}; last output:\n{Tail()}");
    }

    /// <summary>SIGTERM, up to <paramref name="grace"/> to exit, then SIGKILL; by PID only.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (!_process.HasExited)
        {
            _ = Libc.Kill(_process.Id, 15);
            using var wait = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(3));
            try
            {
                await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _ = Libc.Kill(_process.Id, 9);
                await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }

        lock (_lock)
        {
            _log.Dispose();
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            try
            {
                _log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }

            _lines.Enqueue(line);
            if (_lines.Count > KeptLines)
            {
                _lines.Dequeue();
            }

            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    _waiters[i].Seen.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }
}
