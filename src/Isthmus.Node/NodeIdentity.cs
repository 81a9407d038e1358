using System.Security.Cryptography;
using Isthmus.Core;

namespace Isthmus.Node;

/// <summary>
/// A node's persistent key (ECDSA P-256, PEM, mode 0600). Its name is bound to this key at the router on
/// first enrolment, which is what lets the same node come back to the same VIP and stops others taking it.
/// </summary>
public static class NodeIdentity
{
    public static ECDsa LoadOrCreate(string path)
    {
        if (File.Exists(path))
        {
            try
            {
                var key = ECDsa.Create();
                key.ImportFromPem(File.ReadAllText(path));
                return key;
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw new UserException($"{path} is not a valid node key ({e.Message}); remove it only if this node should get a new identity", e, 1);
            }
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var created = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, created.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, path, overwrite: false);
        return created;
    }
}
