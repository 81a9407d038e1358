using System.Buffers;
using Isthmus.Core.Relay;
using Isthmus.Core.Relay.Resumable;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Resumable;

/// <summary>
/// A stream's replay buffer with a spool, on real files in a small tmpfs: memory first, then the spool while
/// the leg is down, then flow control; bytes read back equal from every position after an acknowledgement at
/// every boundary; the spool's space is freed as acknowledgements cover it; a full disk loses nothing.
/// </summary>
public sealed class SpoolTests
{
    private const int Read = StreamRelay.BufferSize - ResumableFrame.HeaderSize;

    /// <summary>The layout every boundary test builds: two memory segments (the bound), three spooled ones, the FIN.</summary>
    private static readonly int[] MemoryLengths = [1000, Read];
    private static readonly int[] SpoolLengths = [1, Read, 5000];
    private static readonly long SpoolStart = MemoryLengths.Sum();
    private static readonly long DataEnd = SpoolStart + SpoolLengths.Sum();

    public static TheoryData<long> Boundaries()
    {
        long[] points =
        [
            0, 1, 999, 1000, 1001, SpoolStart - 1, SpoolStart, SpoolStart + 1, SpoolStart + 2, SpoolStart + 1 + (Read / 2),
            SpoolStart + 1 + Read - 1, SpoolStart + 1 + Read, SpoolStart + 1 + Read + 1, DataEnd - 1, DataEnd, DataEnd + 1,
        ];
        var data = new TheoryData<long>();
        foreach (var p in points)
        {
            data.Add(p);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Boundaries))]
    public void AckAtBoundary_FreesWhatItCovers_RestReadsBackEqual(long ackAt)
    {
        using var mount = TmpfsMount.Create(4 << 20);
        var empty = mount.Used;
        var spool = new Spool(mount.Path, 1 << 30, NullLogger.Instance);
        using var buffer = new OutboundBuffer(2 * StreamRelay.BufferSize, new BufferBudget(1 << 30), spool);
        var data = Fill(buffer, spool);
        Assert.Equal(SpoolLengths.Sum(), spool.Used);
        Assert.Equal(SpoolLengths.Sum(), buffer.Spooled);

        Assert.True(buffer.TryAck(ackAt, out var error), error);

        Assert.Equal(ackAt, buffer.Acked);
        Assert.Equal(data.AsSpan((int)Math.Min(ackAt, DataEnd)).ToArray(), ReadFrom(buffer, ackAt));
        var stillSpooled = SpoolSegments().Where(s => s.End > ackAt).Sum(s => (long)s.Length);
        Assert.Equal(stillSpooled, spool.Used);
        Assert.Equal(stillSpooled, buffer.Spooled);
        Assert.Equal(ackAt == DataEnd + 1, buffer.FinAcked);
        if (stillSpooled == 0)
        {
            Assert.Equal(empty, mount.Used); // the stream's file is closed: its blocks are free
        }
    }

    [Fact]
    public void AcksInSteps_PunchHoles_SpaceReturnsBeforeTheSpoolEmpties()
    {
        using var mount = TmpfsMount.Create(4 << 20);
        var empty = mount.Used;
        var spool = new Spool(mount.Path, 1 << 30, NullLogger.Instance);
        using var buffer = new OutboundBuffer(StreamRelay.BufferSize, new BufferBudget(1 << 30), spool);
        var data = new List<byte>();
        AppendMemory(buffer, Read, data);
        buffer.SpillAllowed = true;
        for (var i = 0; i < 3; i++)
        {
            AppendSpool(buffer, Read, data);
        }

        var full = mount.Used;
        Assert.InRange(full - empty, 3L * Read, 4L * Read);

        Assert.True(buffer.TryAck(3L * Read, out var error), error); // the memory segment and two spooled ones
        Assert.Equal(Read, spool.Used);
        Assert.InRange(mount.Used, empty, full - Read); // holes punched: the file is still open, with one segment
        Assert.Equal(data.Skip(3 * Read).ToArray(), ReadFrom(buffer, 3L * Read));

        Assert.True(buffer.TryAck(4L * Read, out error), error);
        Assert.Equal(0, spool.Used);
        Assert.Equal(empty, mount.Used);
    }

    [Fact]
    public void SpoolLimitReached_FlowControl_UntilAnAckFreesRoom()
    {
        using var mount = TmpfsMount.Create(4 << 20);
        var spool = new Spool(mount.Path, 2L * StreamRelay.BufferSize, NullLogger.Instance);
        using var buffer = new OutboundBuffer(StreamRelay.BufferSize, new BufferBudget(1 << 30), spool);
        var data = new List<byte>();
        AppendMemory(buffer, Read, data);
        Assert.Equal(ReadRoom.None, buffer.RoomNow()); // memory full, leg up: flow control, no spill
        buffer.SpillAllowed = true;
        AppendSpool(buffer, Read, data);
        AppendSpool(buffer, Read, data);
        Assert.Equal(ReadRoom.None, buffer.RoomNow()); // memory full and spool at its limit: flow control

        Assert.True(buffer.TryAck(2L * Read, out var error), error); // frees the memory segment and one spooled
        Assert.Equal(ReadRoom.Memory, buffer.RoomNow());
        AppendMemory(buffer, Read, data);
        Assert.Equal(ReadRoom.Spool, buffer.RoomNow());
        buffer.CancelReservation();
        Assert.Equal(Read, spool.Used);
        Assert.Equal(data.Skip(2 * Read).ToArray(), ReadFrom(buffer, 2L * Read));
    }

    [Fact]
    public void DiskFull_BytesStayInMemory_SpoolSuspended_FlowControl()
    {
        using var mount = TmpfsMount.Create(64 * 1024);
        var empty = mount.Used;
        var spool = new Spool(mount.Path, 1 << 30, NullLogger.Instance);
        using var buffer = new OutboundBuffer(StreamRelay.BufferSize, new BufferBudget(1 << 30), spool);
        var data = new List<byte>();
        AppendMemory(buffer, Read, data);
        buffer.SpillAllowed = true;

        AppendSpool(buffer, Read, data); // more than the tmpfs holds: ENOSPC part way

        Assert.True(spool.Suspended);
        Assert.Equal(0, spool.Used);
        Assert.Equal(0, buffer.Spooled);
        Assert.Equal(2L * StreamRelay.BufferSize, buffer.Held); // one read over the bound rather than a lost read
        Assert.Equal(ReadRoom.None, buffer.RoomNow());
        Assert.Equal(data.ToArray(), ReadFrom(buffer, 0));
        Assert.Equal(empty, mount.Used); // the partly written file was closed
    }

    [Fact]
    public void Open_MissingDirectory_ClearError()
    {
        var missing = Path.Combine(Path.GetTempPath(), "isthmus-no-such-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<UserException>(() => Spool.Open(missing, 1 << 30, NullLogger.Instance));
        Assert.Equal($"--wan-spool {missing}: no such directory (create it, on a local disk with room for --wan-spool-limit)", e.Message);
    }

    [Fact]
    public void Open_ReadOnlyFileSystem_ClearError()
    {
        using var mount = TmpfsMount.Create(64 * 1024, readOnly: true);
        var e = Assert.Throws<UserException>(() => Spool.Open(mount.Path, 1 << 30, NullLogger.Instance));
        Assert.StartsWith($"--wan-spool {mount.Path}: cannot write spool files there (", e.Message, StringComparison.Ordinal);
        Assert.Contains("Read-only file system", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_WritableDirectory_LeavesNoFileBehind()
    {
        using var mount = TmpfsMount.Create(64 * 1024);
        var spool = Spool.Open(mount.Path, 1 << 30, NullLogger.Instance);
        Assert.Equal(mount.Path, spool.Directory);
        Assert.Empty(Directory.EnumerateFileSystemEntries(mount.Path));
    }

    /// <summary>The spooled segments of <see cref="Fill"/>: (end position, length).</summary>
    private static IEnumerable<(long End, int Length)> SpoolSegments()
    {
        var end = SpoolStart;
        foreach (var length in SpoolLengths)
        {
            end += length;
            yield return (end, length);
        }
    }

    private static byte[] Fill(OutboundBuffer buffer, Spool spool)
    {
        var data = new List<byte>();
        foreach (var length in MemoryLengths)
        {
            AppendMemory(buffer, length, data);
        }

        Assert.Equal(ReadRoom.None, buffer.RoomNow()); // the leg is up: a full memory bound is flow control
        buffer.SpillAllowed = true;
        foreach (var length in SpoolLengths)
        {
            AppendSpool(buffer, length, data);
        }

        buffer.AppendFin();
        Assert.Equal(DataEnd + 1, buffer.End);
        Assert.Equal(SpoolLengths.Sum(), spool.Used);
        return [.. data];
    }

    private static void AppendMemory(OutboundBuffer buffer, int length, List<byte> data)
    {
        Assert.Equal(ReadRoom.Memory, buffer.RoomNow());
        buffer.Append(Payload(length, data), length);
    }

    private static void AppendSpool(OutboundBuffer buffer, int length, List<byte> data)
    {
        Assert.Equal(ReadRoom.Spool, buffer.RoomNow());
        buffer.AppendSpooled(Payload(length, data), length);
    }

    /// <summary>A pooled read buffer with <paramref name="length"/> new bytes after the header room, also added to <paramref name="data"/>.</summary>
    private static byte[] Payload(int length, List<byte> data)
    {
        var array = ArrayPool<byte>.Shared.Rent(StreamRelay.BufferSize);
        for (var i = 0; i < length; i++)
        {
            array[ResumableFrame.HeaderSize + i] = (byte)((data.Count + i) * 7 % 251);
        }

        data.AddRange(array.AsSpan(ResumableFrame.HeaderSize, length).ToArray());
        return array;
    }

    /// <summary>The payload bytes from <paramref name="position"/> to the FIN, as the writer would send them.</summary>
    private static byte[] ReadFrom(OutboundBuffer buffer, long position)
    {
        var bytes = new List<byte>();
        while (buffer.TryGet(position, out var segment) && !segment.IsFin)
        {
            var offset = (int)(position - segment.Start);
            var chunk = new byte[segment.Length - offset];
            if (segment.IsSpooled)
            {
                OutboundBuffer.ReadSpooled(segment, offset, chunk);
            }
            else
            {
                segment.Array.AsSpan(ResumableFrame.HeaderSize + offset, chunk.Length).CopyTo(chunk);
            }

            bytes.AddRange(chunk);
            position = segment.End;
        }

        return [.. bytes];
    }
}
