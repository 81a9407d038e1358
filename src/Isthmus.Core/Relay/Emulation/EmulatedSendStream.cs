using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Isthmus.Core.Relay.Emulation;

/// <summary>
/// A WAN connection's raw TCP bytes as the emulator sends them: reads pass straight through; writes are copied
/// into a timed queue (segments of at most 16 KiB, each with the time the link would deliver it: after the
/// link's rate share and the delay ± jitter, never before the segment ahead of it, so bytes are not
/// reordered) and a pump writes each segment to the socket when its time comes. The writer waits only when
/// 8 MiB are queued, so the delay adds latency, not a throughput cap. It sits under TLS, so what is delayed is
/// exactly what goes on the wire. A half-close queues behind the bytes (see <see cref="ShutdownSend"/>).
/// </summary>
internal sealed class EmulatedSendStream : Stream
{
    private const int SegmentSize = 16 * 1024;
    private const long QueueLimit = 8 * 1024 * 1024;
    private static readonly ConditionalWeakTable<Socket, EmulatedSendStream> BySocket = [];

    private readonly Socket _socket;
    private readonly NetworkStream _inner;
    private readonly WanEmulator _emulator;
    private readonly Channel<Segment> _queue = Channel.CreateUnbounded<Segment>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _space = new(0, 1);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Task? _pump;
    private long _queued;
    private long _lastDue;
    private volatile string? _broken;
    private int _disposed;

    public EmulatedSendStream(Socket socket, WanEmulator emulator)
    {
        _socket = socket;
        _emulator = emulator;
        _inner = new NetworkStream(socket, ownsSocket: false);
        BySocket.AddOrUpdate(socket, this);
        if (emulator.Spec.ShapesBytes)
        {
            _pump = Task.Run(PumpAsync);
        }
    }

    /// <summary>The emulated stream of <paramref name="socket"/>, if it has one (for a half-close behind its queued bytes).</summary>
    public static bool TryFor(Socket socket, out EmulatedSendStream? stream) => BySocket.TryGetValue(socket, out stream);

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => _inner.Read(buffer);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfBroken();
        if (_pump is null)
        {
            await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        // One writer at a time keeps the due times monotonic with the queue order.
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (Volatile.Read(ref _queued) >= QueueLimit)
            {
                ThrowIfBroken();
                await _space.WaitAsync(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
            }

            ThrowIfBroken();
            for (var offset = 0; offset < buffer.Length; offset += SegmentSize)
            {
                var length = Math.Min(SegmentSize, buffer.Length - offset);
                var bytes = ArrayPool<byte>.Shared.Rent(length);
                buffer.Span.Slice(offset, length).CopyTo(bytes);
                _lastDue = Math.Max(_emulator.DueTime(length), _lastDue);
                Interlocked.Add(ref _queued, length);
                if (!_queue.Writer.TryWrite(new Segment(bytes, length, _lastDue)))
                {
                    ArrayPool<byte>.Shared.Return(bytes);
                    throw new IOException("emulated WAN connection closed");
                }
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Sends the TCP FIN after every queued byte (at once when nothing is shaped).</summary>
    public void ShutdownSend()
    {
        if (_pump is null || !_queue.Writer.TryWrite(new Segment(null, 0, Math.Max(_lastDue, _emulator.DueTime(0)))))
        {
            ShutdownQuietly(SocketShutdown.Send);
        }
    }

    /// <summary>The emulated outage: the connection ends in both directions, queued bytes are discarded.</summary>
    public void Break(string reason)
    {
        _broken = reason;
        _queue.Writer.TryComplete();
        ShutdownQuietly(SocketShutdown.Both);
        Release();
    }

    private async Task PumpAsync()
    {
        try
        {
            await foreach (var segment in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                try
                {
                    await _emulator.Clock.WaitUntilAsync(segment.Due).ConfigureAwait(false);
                    if (segment.Bytes is null)
                    {
                        ShutdownQuietly(SocketShutdown.Send);
                        continue;
                    }

                    if (_broken is null)
                    {
                        await _socket.SendAsync(segment.Bytes.AsMemory(0, segment.Length), SocketFlags.None).ConfigureAwait(false);
                    }
                }
                finally
                {
                    if (segment.Bytes is not null)
                    {
                        ArrayPool<byte>.Shared.Return(segment.Bytes);
                        if (Interlocked.Add(ref _queued, -segment.Length) < QueueLimit)
                        {
                            Release();
                        }
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            // The connection was reset or closed under us: the next write says so; what is queued goes nowhere.
            _broken ??= e.Message;
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var left))
            {
                if (left.Bytes is not null)
                {
                    ArrayPool<byte>.Shared.Return(left.Bytes);
                }
            }

            Release();
        }
    }

    private void Release()
    {
        try
        {
            if (_space.CurrentCount == 0)
            {
                _space.Release();
            }
        }
        catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException)
        {
        }
    }

    private void ThrowIfBroken()
    {
        if (_broken is { } reason)
        {
            throw new IOException($"WAN connection broken: {reason}");
        }
    }

    private void ShutdownQuietly(SocketShutdown how)
    {
        try
        {
            _socket.Shutdown(how);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _queue.Writer.TryComplete();
            _emulator.Forget(this);
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_pump is not null && _broken is null)
        {
            // A graceful close lets the queued bytes (the last acknowledgements) reach the wire first, bounded.
            _queue.Writer.TryComplete();
            await Task.WhenAny(_pump, Task.Delay(_emulator.Spec.Delay + _emulator.Spec.Jitter + TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    private readonly record struct Segment(byte[]? Bytes, int Length, long Due);
}
