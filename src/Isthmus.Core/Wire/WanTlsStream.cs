using System.Net.Security;

namespace Isthmus.Core.Wire;

/// <summary>
/// The TLS stream of a router-to-router connection: an <see cref="SslStream"/> over a
/// <see cref="RecordBatchingStream"/>, whose every write of more than one record leaves as one write of the
/// socket (all its records together) instead of a send per 16 KiB record.
/// </summary>
public sealed class WanTlsStream(RecordBatchingStream transport) : SslStream(transport, leaveInnerStreamOpen: false)
{
    /// <summary>The most bytes one TLS 1.3 record carries: smaller writes are one record anyway.</summary>
    private const int RecordData = 16 * 1024;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length <= RecordData)
        {
            await base.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        transport.BeginBatch();
        try
        {
            await base.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            transport.AbandonBatch();
            throw;
        }

        await transport.EndBatchAsync(cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
}
