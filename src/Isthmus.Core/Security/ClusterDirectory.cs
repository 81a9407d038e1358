using System.Security.Cryptography.X509Certificates;
using Isthmus.Core.Config;

namespace Isthmus.Core.Security;

/// <summary>
/// The cluster directory made by <c>isthmus cluster new</c>: where each file lives, and loading them.
/// <code>
/// DIR/cluster.toml                        the cluster file (route table)
/// DIR/ca.crt, DIR/ca.key                  cluster CA (ca.key 0600)
/// DIR/enrol.secret, DIR/router.secret     32 random bytes each, hex (0600)
/// DIR/sites/SITE/router.crt, router.key   the site's router identity
/// DIR/state/SITE/nodes.json               the router's persisted node bindings
/// DIR/nodes/NAME.key                      a node's persistent identity key (0600)
/// </code>
/// </summary>
public sealed class ClusterDirectory
{
    /// <summary>The length of <c>enrol.secret</c> and <c>router.secret</c> in bytes.</summary>
    public const int SecretLength = 32;

    /// <summary>Names the directory at <paramref name="path"/>; nothing is read until asked for.</summary>
    public ClusterDirectory(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        DisplayPath = path;
    }

    /// <summary>The directory's full path.</summary>
    public string Path { get; }

    /// <summary>The directory as the user wrote it, for messages.</summary>
    public string DisplayPath { get; }

    /// <summary><c>DIR/cluster.toml</c>.</summary>
    public string ClusterFilePath => Combine("cluster.toml");

    /// <summary><c>DIR/ca.crt</c>.</summary>
    public string CaCertificatePath => Combine("ca.crt");

    /// <summary><c>DIR/ca.key</c>.</summary>
    public string CaKeyPath => Combine("ca.key");

    /// <summary><c>DIR/enrol.secret</c>.</summary>
    public string EnrolSecretPath => Combine("enrol.secret");

    /// <summary><c>DIR/router.secret</c>.</summary>
    public string RouterSecretPath => Combine("router.secret");

    /// <summary><c>DIR/sites</c>.</summary>
    public string SitesDirectory => Combine("sites");

    /// <summary><c>DIR/state</c>.</summary>
    public string StateRoot => Combine("state");

    /// <summary><c>DIR/nodes</c>.</summary>
    public string NodesDirectory => Combine("nodes");

    /// <summary>Whether the directory holds a cluster file.</summary>
    public bool Exists => File.Exists(ClusterFilePath);

    /// <summary><c>DIR/sites/SITE</c>.</summary>
    public string SiteDirectory(string site) => System.IO.Path.Combine(SitesDirectory, CheckName("site", site));

    /// <summary><c>DIR/sites/SITE/router.crt</c>.</summary>
    public string RouterCertificatePath(string site) => System.IO.Path.Combine(SiteDirectory(site), "router.crt");

    /// <summary><c>DIR/sites/SITE/router.key</c>.</summary>
    public string RouterKeyPath(string site) => System.IO.Path.Combine(SiteDirectory(site), "router.key");

    /// <summary><c>DIR/state/SITE</c>: the router's persistent state (not created here).</summary>
    public string StateDirectory(string site) => System.IO.Path.Combine(StateRoot, CheckName("site", site));

    /// <summary><c>DIR/state/SITE/nodes.json</c>: the router's name → {vip, spki} bindings.</summary>
    public string NodeBindingsPath(string site) => System.IO.Path.Combine(StateDirectory(site), "nodes.json");

    /// <summary><c>DIR/nodes/NAME.key</c>: a node's persistent identity key.</summary>
    public string NodeKeyPath(string name) => System.IO.Path.Combine(NodesDirectory, CheckName("node", name) + ".key");

    /// <summary>Reads and validates <c>cluster.toml</c>.</summary>
    public ClusterFile LoadClusterFile() => ClusterFile.Load(Require(ClusterFilePath));

    /// <summary>The CA certificate, without its key: what a peer's certificate is checked against.</summary>
    public X509Certificate2 LoadCaCertificate() => ClusterCa.ReadCertificate(Require(CaCertificatePath));

    /// <summary>The CA certificate with its private key, for issuing certificates.</summary>
    public X509Certificate2 LoadCaWithKey() => ClusterCa.ReadCertificateWithKey(Require(CaCertificatePath), Require(CaKeyPath));

    /// <summary>The 32-byte secret a node must hold to enrol.</summary>
    public byte[] LoadEnrolSecret() => LoadSecret(EnrolSecretPath);

    /// <summary>The 32-byte secret that authenticates cleartext WAN legs.</summary>
    public byte[] LoadRouterSecret() => LoadSecret(RouterSecretPath);

    /// <summary>
    /// The router identity of <paramref name="site"/>: its certificate with a private key that SslStream can use
    /// as a TLS server and as a TLS client.
    /// </summary>
    public X509Certificate2 LoadRouterIdentity(string site)
    {
        var certificatePath = RouterCertificatePath(site);
        if (!File.Exists(certificatePath))
        {
            throw new UserException($"{Display(certificatePath)} not found: is '{site}' a site of this cluster? "
                + $"(add it with 'isthmus cluster add-site {DisplayPath} {site} --wan HOST:PORT --lan HOST:PORT')");
        }

        using var pemLoaded = ClusterCa.ReadCertificateWithKey(certificatePath, Require(RouterKeyPath(site)));
        // A key imported from PEM is "ephemeral"; some TLS back ends refuse those for server authentication,
        // so round-trip through PKCS#12, which gives a key every platform accepts.
        var pfx = pemLoaded.Export(X509ContentType.Pkcs12);
        try
        {
            return X509CertificateLoader.LoadPkcs12(pfx, null, X509KeyStorageFlags.Exportable);
        }
        finally
        {
            Array.Clear(pfx);
        }
    }

    private byte[] LoadSecret(string path)
    {
        var text = File.ReadAllText(Require(path)).Trim();
        byte[] secret;
        try
        {
            secret = Convert.FromHexString(text);
        }
        catch (FormatException e)
        {
            throw new UserException($"{Display(path)} is not a hex secret", e);
        }

        return secret.Length == SecretLength
            ? secret
            : throw new UserException($"{Display(path)} holds {secret.Length} bytes; a secret is {SecretLength} bytes ({SecretLength * 2} hex digits)");
    }

    private string Require(string path) => File.Exists(path)
        ? path
        : throw new UserException(
            $"{Display(path)} not found: is {DisplayPath} a cluster directory made by 'isthmus cluster new'?");

    // Paths in messages start with the directory as the user wrote it.
    private string Display(string path) => System.IO.Path.Combine(DisplayPath, System.IO.Path.GetRelativePath(Path, path));

    private string Combine(string name) => System.IO.Path.Combine(Path, name);

    private static string CheckName(string what, string name)
    {
        // Names become path parts: a name like "../x" must never leave the directory.
        DnsLabel.Check($"{what} name", name);
        return name;
    }
}
