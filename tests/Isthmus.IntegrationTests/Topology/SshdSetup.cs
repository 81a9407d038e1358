namespace Isthmus.IntegrationTests.Topology;

/// <summary>
/// A private sshd for a test: fresh host and user keys in <paramref name="Directory"/>, a config that listens
/// on one address and port, key login only, no PAM or DNS, logging every accepted key (tests read that).
/// </summary>
public sealed record SshdSetup(string Directory, string Config, string UserKey)
{
    private static readonly TimeSpan KeygenTimeout = TimeSpan.FromSeconds(30);

    /// <param name="forceCommand">If set, every session runs this (sshd_config ForceCommand).</param>
    public static async Task<SshdSetup> CreateAsync(string directory, string listenAddress, int port, string? forceCommand = null)
    {
        System.IO.Directory.CreateDirectory(directory);
        foreach (var key in new[] { "host", "user" })
        {
            (await Shell.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(directory, key)], KeygenTimeout).ConfigureAwait(false)).EnsureSuccess();
        }

        File.Copy(Path.Combine(directory, "user.pub"), Path.Combine(directory, "authorized_keys"));
        var config = Path.Combine(directory, "sshd_config");
        await File.WriteAllTextAsync(config, $"""
            Port {port}
            ListenAddress {listenAddress}
            HostKey {directory}/host
            AuthorizedKeysFile {directory}/authorized_keys
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            UseDNS no
            StrictModes no
            PidFile none
            LogLevel VERBOSE
            {(forceCommand is null ? "" : "ForceCommand " + forceCommand)}
            """).ConfigureAwait(false);
        System.IO.Directory.CreateDirectory("/run/sshd"); // sshd's privilege-separation directory
        return new SshdSetup(directory, config, Path.Combine(directory, "user"));
    }
}
