using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>Which captured stream a line wait looks at.</summary>
public enum OutputStream
{
    Both,
    StandardOutput,
    StandardError,
}

/// <summary>A process of a <see cref="HostProcess"/> ended before the awaited output appeared.</summary>
public sealed class HostProcessException(string message) : Exception(message);

/// <summary>
/// A program running in a namespace as <c>setsid ip netns exec NS file args…</c>: it leads its own
/// process group (PGID = <see cref="Id"/>), so <see cref="Signal"/> and <see cref="Kill"/> reach it and
/// every child it forked, and nothing else. Stdout and stderr are captured line by line.
/// </summary>
public sealed class HostProcess
{
    private const int MaxEchoedLines = 300;
    private static readonly TimeSpan OutputGraceAfterExit = TimeSpan.FromSeconds(1);

    private readonly Process _process;
    private readonly TopologyLog _log;
    private readonly Lock _lock = new();
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly List<Waiter> _waiters = [];
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _stdoutOpen = true;
    private volatile bool _processDisposed;
    private bool _stderrOpen = true;
    private int _echoed;

    private HostProcess(NetNamespace host, string label, Process process, TopologyLog log)
    {
        Host = host;
        Label = label;
        _process = process;
        _log = log;
    }

    /// <summary>Namespace the process runs in.</summary>
    public NetNamespace Host { get; }

    /// <summary>"a-gw/python3" style name used in logs and errors (the pid is appended once known).</summary>
    public string Label { get; private set; }

    /// <summary>PID of the group leader, which is also the process group ID.</summary>
    public int Id { get; private set; }

    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>The leader has not been reaped yet, so its PID (= our PGID) cannot have been reused.</summary>
    private bool LeaderRunning
    {
        get
        {
            try
            {
                return !_processDisposed && !_exited.Task.IsCompleted && !_process.HasExited;
            }
            catch (InvalidOperationException)
            {
                return false; // disposed meanwhile
            }
        }
    }

    /// <summary>Exit code once exited (128 + signal when killed by a signal), else null.</summary>
    public int? ExitCode => _exited.Task.IsCompleted ? _exited.Task.Result : null;

    public IReadOnlyList<string> StandardOutputLines
    {
        get
        {
            lock (_lock)
            {
                return [.. _stdout];
            }
        }
    }

    public IReadOnlyList<string> StandardErrorLines
    {
        get
        {
            lock (_lock)
            {
                return [.. _stderr];
            }
        }
    }

    /// <summary>Captured stdout so far, lines joined with '\n'.</summary>
    public string StandardOutput => string.Join('\n', StandardOutputLines);

    /// <summary>Captured stderr so far, lines joined with '\n'.</summary>
    public string StandardError => string.Join('\n', StandardErrorLines);

    internal static HostProcess Start(
        NetNamespace host,
        string file,
        IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string?>? environment,
        TopologyLog log)
    {
        var program = Shell.Resolve(file);
        var psi = new ProcessStartInfo(Shell.Resolve("setsid"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        // setsid does not fork when its caller is not a group leader (a child of this process is not),
        // and `ip netns exec` execs without forking, so the pid we get is the new session and group leader.
        foreach (var a in (string[])[Shell.Resolve("ip"), "netns", "exec", host.Namespace, program, .. args])
        {
            psi.ArgumentList.Add(a);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                if (value is null)
                {
                    psi.Environment.Remove(key);
                }
                else
                {
                    psi.Environment[key] = value;
                }
            }
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var hp = new HostProcess(host, $"{host.Name}/{Path.GetFileName(program)}", process, log);
        process.OutputDataReceived += (_, e) => hp.OnLine(e.Data, isError: false);
        process.ErrorDataReceived += (_, e) => hp.OnLine(e.Data, isError: true);
        process.Exited += (_, _) => hp.OnExited();
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new HostProcessException($"cannot start {hp.Label}: {e.Message}");
        }

        hp.Id = process.Id;
        hp.Label = $"{hp.Label}:{hp.Id}";
        process.StandardInput.AutoFlush = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        hp.AwaitOwnSession();
        log.Write($"started {hp.Label}: {Shell.FormatCommand(program, args)}");
        return hp;
    }

    /// <summary>Waits (bounded) until setsid has made the child a session leader, so its PGID is ours to signal.</summary>
    private void AwaitOwnSession()
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            var stat = ProcFs.ReadStat(Id);
            if (stat is null || stat.Value.IsZombie || stat.Value.Session == Id)
            {
                return; // a session of its own (or already gone: then there is nothing to signal)
            }

            Thread.Sleep(1);
        }

        ProcFs.SignalProcess(Id, Signals.Kill);
        throw new HostProcessException($"{Label} did not become a session leader within 5 s; killed it");
    }

    /// <summary>Waits for a captured line matching <paramref name="pattern"/> (lines already captured count).</summary>
    /// <exception cref="TimeoutException">No such line in time; the message has the captured output.</exception>
    /// <exception cref="HostProcessException">The process exited (and its output ended) first.</exception>
    public Task<string> WaitForLineAsync(Regex pattern, TimeSpan timeout, OutputStream stream = OutputStream.Both)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return WaitForLineAsync(pattern.IsMatch, timeout, stream, $"/{pattern}/");
    }

    /// <summary>Waits for a captured line for which <paramref name="predicate"/> is true.</summary>
    public async Task<string> WaitForLineAsync(
        Func<string, bool> predicate,
        TimeSpan timeout,
        OutputStream stream = OutputStream.Both,
        string? description = null)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        description ??= "the predicate";
        Waiter waiter;
        lock (_lock)
        {
            if (stream != OutputStream.StandardError && _stdout.FirstOrDefault(predicate) is { } o)
            {
                return o;
            }

            if (stream != OutputStream.StandardOutput && _stderr.FirstOrDefault(predicate) is { } e)
            {
                return e;
            }

            if (_finished.Task.IsCompleted)
            {
                throw new HostProcessException($"{Label} ended before a line matching {description} appeared\n{DescribeLocked()}");
            }

            waiter = new Waiter(predicate, stream, description);
            _waiters.Add(waiter);
        }

        try
        {
            return await waiter.Result.Task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (_lock)
            {
                _waiters.Remove(waiter);
                throw new TimeoutException(
                    $"no line matching {description} from {Label} within {timeout.TotalSeconds:0.###} s\n{DescribeLocked()}");
            }
        }
    }

    /// <summary>Waits for the process to exit and its output to end; returns the exit code.</summary>
    /// <exception cref="TimeoutException">Still running at the deadline (it is left running).</exception>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _finished.Task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Label} did not exit within {timeout.TotalSeconds:0.###} s\n{Describe()}");
        }

        return _exited.Task.Result;
    }

    /// <summary>Sends <paramref name="signal"/> to the whole process group. False when nothing of it is left.</summary>
    public bool Signal(int signal)
    {
        if (Id <= 1)
        {
            return false;
        }

        if (LeaderRunning)
        {
            return ProcFs.SignalGroup(Id, signal); // the leader is ours and unreaped: the group is ours
        }

        // The leader is gone; signal the group only while members remain inside this host's namespace.
        return IsGroupAlive() && ProcFs.SignalGroup(Id, signal);
    }

    /// <summary>SIGKILL to the whole process group.</summary>
    public bool Kill() => Signal(Signals.Kill);

    /// <summary>SIGTERM to the group, SIGKILL after <paramref name="grace"/> (default 2 s), then waits (bounded) until it is gone.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (Signal(Signals.Terminate) &&
            !await Poll.UntilAsync(() => !IsGroupAlive(), grace ?? TimeSpan.FromSeconds(2)).ConfigureAwait(false))
        {
            Kill();
        }

        if (!await Poll.UntilAsync(() => !IsGroupAlive(), TimeSpan.FromSeconds(5)).ConfigureAwait(false))
        {
            throw new HostProcessException($"{Label}: process group {Id} still alive after SIGKILL");
        }
    }

    /// <summary>Writes <paramref name="text"/> to the process's stdin (no newline added).</summary>
    public void WriteStdin(string text)
    {
        try
        {
            _process.StandardInput.Write(text);
        }
        catch (IOException e)
        {
            throw new HostProcessException($"{Label}: cannot write stdin: {e.Message}");
        }
    }

    /// <summary>Closes stdin (the program sees EOF).</summary>
    public void CloseStdin()
    {
        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
            // the program is gone; nothing to close
        }
    }

    /// <summary>True while the leader runs or any member of its group lives in this host's namespace.</summary>
    public bool IsGroupAlive()
    {
        if (Id <= 1)
        {
            return false;
        }

        if (LeaderRunning)
        {
            return true;
        }

        var ns = Host.NamespaceId;
        return ProcFs.GroupMembers(Id).Any(pid => ns is null || ProcFs.NetNamespaceOf(pid) == ns);
    }

    /// <summary>Status plus the last lines of stdout and stderr, for failure messages.</summary>
    public string Describe()
    {
        lock (_lock)
        {
            return DescribeLocked();
        }
    }

    public override string ToString() => Label;

    internal void DisposeProcess()
    {
        _processDisposed = true;
        _process.Dispose();
    }

    private string DescribeLocked()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Label}: ")
          .Append(_exited.Task.IsCompleted ? $"exited with code {_exited.Task.Result}" : "running")
          .Append('\n');
        Tail(sb, "stdout", _stdout);
        Tail(sb, "stderr", _stderr);
        return sb.ToString();

        static void Tail(StringBuilder sb, string name, List<string> lines)
        {
            const int max = 60;
            sb.Append(CultureInfo.InvariantCulture, $"--- {name} ({lines.Count} lines{(lines.Count > max ? $", last {max}" : "")})\n");
            foreach (var line in lines.Skip(Math.Max(0, lines.Count - max)))
            {
                sb.Append(line).Append('\n');
            }
        }
    }

    private void OnLine(string? line, bool isError)
    {
        List<Waiter>? done = null;
        var echo = false;
        lock (_lock)
        {
            if (line is null)
            {
                if (isError)
                {
                    _stderrOpen = false;
                }
                else
                {
                    _stdoutOpen = false;
                }

                if (!_stdoutOpen && !_stderrOpen && _exited.Task.IsCompleted)
                {
                    FinishLocked();
                }

                return;
            }

            (isError ? _stderr : _stdout).Add(line);
            echo = ++_echoed <= MaxEchoedLines;
            foreach (var w in _waiters)
            {
                if ((w.Stream == OutputStream.Both || (w.Stream == OutputStream.StandardError) == isError) && w.Predicate(line))
                {
                    (done ??= []).Add(w);
                }
            }

            if (done is not null)
            {
                _waiters.RemoveAll(done.Contains);
            }
        }

        if (echo)
        {
            _log.Write($"[{Label} {(isError ? "err" : "out")}] {line}");
            if (_echoed == MaxEchoedLines)
            {
                _log.Write($"[{Label}] further output is captured but not echoed");
            }
        }

        foreach (var w in done ?? [])
        {
            w.Result.TrySetResult(line);
        }
    }

    private void OnExited()
    {
        int code;
        try
        {
            code = _process.ExitCode;
        }
        catch (InvalidOperationException)
        {
            code = -1;
        }

        _exited.TrySetResult(code);
        _log.Write($"{Label} exited with code {code}");
        lock (_lock)
        {
            if (!_stdoutOpen && !_stderrOpen)
            {
                FinishLocked();
                return;
            }
        }

        // A child may still hold the pipes open; give the output a moment, then stop waiting for it.
        _ = Task.Delay(OutputGraceAfterExit).ContinueWith(
            _ =>
            {
                lock (_lock)
                {
                    FinishLocked();
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.None,
            TaskScheduler.Default);
    }

    private void FinishLocked()
    {
        if (!_finished.TrySetResult())
        {
            return;
        }

        foreach (var w in _waiters)
        {
            w.Result.TrySetException(new HostProcessException(
                $"{Label} ended before a line matching {w.Description} appeared\n{DescribeLocked()}"));
        }

        _waiters.Clear();
    }

    private sealed record Waiter(Func<string, bool> Predicate, OutputStream Stream, string Description)
    {
        public TaskCompletionSource<string> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
