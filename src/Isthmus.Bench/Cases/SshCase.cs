using System.Globalization;

namespace Isthmus.Bench.Cases;

/// <summary>
/// An SSH tunnel: sshd on gwb's WAN address, <c>ssh -N -L gwaLAN:p:b1:p</c> on gwa for every tool port,
/// with the given cipher; a1 dials gwa. Keys are made for the run with ssh-keygen.
/// </summary>
public sealed class SshCase(string name, string? cipher) : BenchCase
{
    private BenchProcess? _sshd;
    private BenchProcess? _ssh;
    private string _dir = "";

    public override string Name => name;

    public override string Description => $"ssh -L on gwa to sshd on gwb, cipher {cipher ?? "default (chacha20-poly1305)"}";

    public override string ClientNode => "a1";

    public override string ServerNode => "b1";

    public override string Target => BenchTopology.GatewayALan;

    public override IReadOnlyList<string> Requires => ["ssh", "/usr/sbin/sshd", "ssh-keygen"];

    public override IEnumerable<int> RelayPids => new[] { _sshd, _ssh }.Where(p => p is { HasExited: false }).Select(p => p!.Pid);

    public override async Task SetupAsync(BenchContext context, CancellationToken cancellationToken)
    {
        _dir = Path.Combine(context.WorkDirectory, "ssh-" + name);
        Directory.CreateDirectory(_dir);
        File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await Shell.CheckAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(_dir, "id_ed25519"), "-C", "isthmus-bench").ConfigureAwait(false);
        await Shell.CheckAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(_dir, "host_key"), "-C", "isthmus-bench-host").ConfigureAwait(false);
        File.Copy(Path.Combine(_dir, "id_ed25519.pub"), Path.Combine(_dir, "authorized_keys"));
        Directory.CreateDirectory("/run/sshd");
        await File.WriteAllTextAsync(Path.Combine(_dir, "sshd_config"), $"""
            ListenAddress {BenchTopology.GatewayBWan}
            Port 22
            HostKey {_dir}/host_key
            AuthorizedKeysFile {_dir}/authorized_keys
            StrictModes no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            UseDNS no
            AllowTcpForwarding yes
            PidFile none
            LogLevel ERROR

            """, cancellationToken).ConfigureAwait(false);
    }

    public override async Task StartAsync(BenchContext context, CancellationToken cancellationToken)
    {
        _sshd = context.Start(name + "-sshd", "gwb", "/usr/sbin/sshd", ["-D", "-e", "-f", Path.Combine(_dir, "sshd_config")]);
        await context.WaitListeningAsync("gwb", 22, _sshd, cancellationToken).ConfigureAwait(false);
        var args = new List<string>
        {
            "-N", "-T", "-i", Path.Combine(_dir, "id_ed25519"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
        };
        if (cipher is not null)
        {
            args.AddRange(["-c", cipher]);
        }

        foreach (var port in ToolPorts.All)
        {
            var p = port.ToString(CultureInfo.InvariantCulture);
            args.AddRange(["-L", $"{BenchTopology.GatewayALan}:{p}:{BenchTopology.B1}:{p}"]);
        }

        args.Add("root@" + BenchTopology.GatewayBWan);
        _ssh = context.Start(name + "-ssh", "gwa", "ssh", args);
        foreach (var port in ToolPorts.All)
        {
            await context.WaitListeningAsync("gwa", port, _ssh, cancellationToken).ConfigureAwait(false);
        }
    }

    public override async Task StopAsync(BenchContext context)
    {
        await context.StopAsync(_ssh).ConfigureAwait(false);
        await context.StopAsync(_sshd).ConfigureAwait(false);
        _ssh = _sshd = null;
    }
}
