using Isthmus.Core;

namespace Isthmus.Personal.State;

/// <summary>
/// An exclusive lock on a cluster's state (.NET takes <c>flock(LOCK_EX)</c> for <see cref="FileShare.None"/>), so
/// <c>grow</c> from one shell and the elastic manager never write state.json over each other.
/// </summary>
public sealed class StateLock : IDisposable
{
    private readonly FileStream _stream;

    private StateLock(FileStream stream) => _stream = stream;

    public static async Task<StateLock> AcquireAsync(StateDirectory dir, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                return new StateLock(new FileStream(dir.LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new UserException($"another isthmus command is changing {dir.Path} (waited {timeout.TotalSeconds:0} s for {dir.LockFile})", e, 1);
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
