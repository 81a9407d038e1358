using System.Security.Cryptography;
using Isthmus.Core;
using Isthmus.Core.Addressing;
using Isthmus.Core.Config;
using Isthmus.Core.Security;

namespace Isthmus.Cluster;

/// <summary>
/// Makes and grows a cluster directory (<c>isthmus cluster new</c> and <c>isthmus cluster add-site</c>). See
/// <see cref="ClusterDirectory"/> for the layout.
/// </summary>
public static class ClusterCreator
{
    /// <summary>
    /// Creates a cluster directory: <c>cluster.toml</c> with a random id and no sites, the CA (<c>ca.crt</c>,
    /// <c>ca.key</c>), <c>enrol.secret</c> and <c>router.secret</c>.
    /// </summary>
    /// <param name="dir">The directory; created (0700) if missing. It must not already hold a cluster.</param>
    /// <param name="network">The cluster network, prefix 16..28.</param>
    /// <param name="name">The cluster name, a DNS label.</param>
    /// <param name="imageBase">The loopback image base; null for <see cref="VirtualNetwork.DefaultImageBase"/>.</param>
    /// <param name="wanEncryption">Whether router↔router legs use TLS 1.3.</param>
    /// <returns>The directory; <see cref="ClusterDirectory.LoadClusterFile"/> gives what was written.</returns>
    /// <exception cref="UserException">The input is not allowed, or the directory already holds a cluster.</exception>
    public static ClusterDirectory New(string dir, IPv4Cidr network, string name = "isthmus", uint? imageBase = null,
        bool wanEncryption = true)
    {
        DnsLabel.Check("cluster name", name);
        var cluster = new ClusterSettings(name, RandomNumberGenerator.GetHexString(16, lowercase: true), network,
            imageBase ?? VirtualNetwork.DefaultImageBase, wanEncryption);
        var file = new ClusterFile(cluster, []);
        file.Validate();

        var directory = new ClusterDirectory(dir);
        if (directory.Exists)
        {
            throw new UserException($"{dir} already holds a cluster ({Path.Combine(dir, "cluster.toml")}); "
                + "not overwriting it: choose another directory, or add sites with 'isthmus cluster add-site'");
        }

        // A file left by an interrupted run would be mixed with new ones (a CA key that signed nothing in
        // this cluster file): refuse rather than guess.
        string[] files = [directory.CaCertificatePath, directory.CaKeyPath, directory.EnrolSecretPath, directory.RouterSecretPath];
        if (files.FirstOrDefault(File.Exists) is { } leftover)
        {
            throw new UserException($"{dir} already has {Path.GetFileName(leftover)} but no cluster.toml "
                + "(left by an interrupted 'cluster new'?): remove it, or choose another directory");
        }

        SecureFile.CreatePrivateDirectory(directory.Path);
        using (var ca = ClusterCa.CreateAuthority(name))
        {
            SecureFile.WriteNew(directory.CaKeyPath, ClusterCa.ExportPrivateKeyPem(ca), secret: true);
            SecureFile.WriteNew(directory.CaCertificatePath, ClusterCa.ExportCertificatePem(ca), secret: false);
        }

        SecureFile.WriteNew(directory.EnrolSecretPath, NewSecret(), secret: true);
        SecureFile.WriteNew(directory.RouterSecretPath, NewSecret(), secret: true);
        // Last, so that a directory with a cluster.toml always has everything else too.
        file.Save(directory.ClusterFilePath);
        return directory;
    }

    /// <summary>
    /// Adds a site: allocates (or checks) its subnet, issues its router certificate
    /// (<c>sites/SITE/router.crt</c>, <c>router.key</c>) and saves the cluster file with the new site last.
    /// </summary>
    /// <param name="dir">A cluster directory made by <see cref="New"/>.</param>
    /// <param name="site">The site name, a DNS label not yet used in this cluster.</param>
    /// <param name="wan">Where other sites' routers reach this site's router.</param>
    /// <param name="lan">Where this site's nodes reach its router.</param>
    /// <param name="subnet">The site subnet; null for the first free block (see <see cref="AllocateSubnet"/>).</param>
    /// <returns>The site as saved.</returns>
    /// <exception cref="UserException">The name is taken or invalid, or the subnet does not fit.</exception>
    public static SiteSettings AddSite(string dir, string site, HostPort wan, HostPort lan, IPv4Cidr? subnet = null)
    {
        DnsLabel.Check("site name", site);
        var directory = new ClusterDirectory(dir);
        var file = directory.LoadClusterFile();
        if (file.FindSite(site) is { } existing)
        {
            throw new UserException($"site '{site}' already exists in {Path.Combine(dir, "cluster.toml")} (subnet {existing.Subnet})");
        }

        var network = file.Cluster.Network;
        if (subnet is { } chosen)
        {
            if (!network.Contains(chosen))
            {
                throw new UserException($"subnet {chosen} is not inside the cluster network {network}");
            }

            if (file.Sites.FirstOrDefault(s => s.Subnet.Overlaps(chosen)) is { } other)
            {
                throw new UserException($"subnet {chosen} overlaps site '{other.Name}' ({other.Subnet})");
            }
        }

        var settings = new SiteSettings(site, subnet ?? AllocateSubnet(file), wan, lan);
        var updated = file.WithSite(settings);

        using (var ca = directory.LoadCaWithKey())
        {
            // Key first: a certificate on disk always has its key beside it.
            IssueRouter(directory, ca, site, file.Cluster.Name);
        }

        updated.Save(directory.ClusterFilePath);
        return settings;
    }

    /// <summary>
    /// Issues a new certificate for <paramref name="site"/>'s router with the cluster CA (fresh 5-year validity, new
    /// key), replacing <c>sites/SITE/router.crt</c> and <c>router.key</c>. Peers trust it at once (same CA); the
    /// router uses it from its next start.
    /// </summary>
    /// <returns>The new certificate's end of validity (UTC).</returns>
    /// <exception cref="UserException">Not a cluster directory, or no such site.</exception>
    public static DateTime RenewRouter(string dir, string site)
    {
        var directory = new ClusterDirectory(dir);
        var file = directory.LoadClusterFile();
        if (file.FindSite(site) is null)
        {
            throw new UserException($"site '{site}' is not in {directory.ClusterFilePath}; sites: {string.Join(", ", file.Sites.Select(s => s.Name))}");
        }

        using var ca = directory.LoadCaWithKey();
        return IssueRouter(directory, ca, site, file.Cluster.Name);
    }

    /// <summary>
    /// Replaces the cluster CA: a new CA key and certificate (the old ones kept as <c>ca.crt.previous</c> and
    /// <c>ca.key.previous</c>), and a new certificate for every site's router signed by it. With
    /// <paramref name="newSecrets"/> also new <c>enrol.secret</c> and <c>router.secret</c> (what a leaked CA key
    /// usually means: the whole directory was exposed). Every router and agent reads these files at start, so all
    /// of them must be restarted; until then old and new parties refuse each other.
    /// </summary>
    /// <returns>The sites whose router certificates were reissued.</returns>
    public static IReadOnlyList<string> RotateCa(string dir, bool newSecrets = false)
    {
        var directory = new ClusterDirectory(dir);
        var file = directory.LoadClusterFile();
        using (directory.LoadCaWithKey())
        {
            // Only checks that the current CA is readable before anything is moved.
        }

        File.Copy(directory.CaCertificatePath, directory.CaCertificatePath + ".previous", overwrite: true);
        File.Copy(directory.CaKeyPath, directory.CaKeyPath + ".previous", overwrite: true);
        File.SetUnixFileMode(directory.CaKeyPath + ".previous", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var ca = ClusterCa.CreateAuthority(file.Cluster.Name);
        // Key first, as everywhere: a certificate on disk always has its key beside it.
        SecureFile.WriteAtomic(directory.CaKeyPath, ClusterCa.ExportPrivateKeyPem(ca), secret: true);
        SecureFile.WriteAtomic(directory.CaCertificatePath, ClusterCa.ExportCertificatePem(ca), secret: false);
        foreach (var site in file.Sites)
        {
            IssueRouter(directory, ca, site.Name, file.Cluster.Name);
        }

        if (newSecrets)
        {
            SecureFile.WriteAtomic(directory.EnrolSecretPath, NewSecret(), secret: true);
            SecureFile.WriteAtomic(directory.RouterSecretPath, NewSecret(), secret: true);
        }

        return [.. file.Sites.Select(s => s.Name)];
    }

    private static DateTime IssueRouter(ClusterDirectory directory, System.Security.Cryptography.X509Certificates.X509Certificate2 ca, string site, string cluster)
    {
        using var certificate = ClusterCa.IssueRouterCertificate(ca, site, cluster);
        SecureFile.CreatePrivateDirectory(directory.SitesDirectory);
        SecureFile.CreatePrivateDirectory(directory.SiteDirectory(site));
        ClusterCa.WritePrivateKey(directory.RouterKeyPath(site), certificate);
        ClusterCa.WriteCertificate(directory.RouterCertificatePath(site), certificate);
        return certificate.NotAfter.ToUniversalTime();
    }

    /// <summary>
    /// The first free site block of the cluster network, in address order, starting from the second block so
    /// that site numbers start at 1. Networks of prefix up to /23 are cut into /24s (x.y.1.0/24, x.y.2.0/24, …:
    /// the third number of a VIP is its site). A network smaller than that (/24../28) is cut into quarters
    /// (prefix + 2), so that it still holds three sites: a /24 gives /26 sites of 61 nodes, a /28 gives /30
    /// sites of one node each.
    /// </summary>
    /// <exception cref="UserException">No block is free.</exception>
    public static IPv4Cidr AllocateSubnet(ClusterFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var network = file.Cluster.Network;
        var prefix = SiteBlockPrefix(network);
        var blockSize = 1u << (32 - prefix);
        var blocks = network.AddressCount / blockSize;
        for (var i = 1UL; i < blocks; i++)
        {
            var candidate = new IPv4Cidr(network.Network + (uint)(i * blockSize), prefix);
            if (!file.Sites.Any(s => s.Subnet.Overlaps(candidate)))
            {
                return candidate;
            }
        }

        throw new UserException($"no free /{prefix} left in the cluster network {network} "
            + $"({file.Sites.Count} sites); give the site a smaller subnet with --subnet");
    }

    /// <summary>The prefix length of an allocated site block for <paramref name="network"/> (see <see cref="AllocateSubnet"/>).</summary>
    public static int SiteBlockPrefix(IPv4Cidr network) => network.PrefixLength <= 23 ? 24 : network.PrefixLength + 2;

    private static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(ClusterDirectory.SecretLength)) + "\n";
}
