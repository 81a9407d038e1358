namespace Isthmus.Personal;

/// <summary>Where a command reports progress: one event per step, with the site it concerns ("home" for the submission host).</summary>
public interface IClusterProgress
{
    /// <summary>A step of <paramref name="site"/>: <paramref name="part"/> (router, proxies, nodes, slurm) is now <paramref name="text"/>.</summary>
    void Report(string site, string part, string text);

    /// <summary>Something failed at <paramref name="site"/>; the rest goes on.</summary>
    void Failed(string site, string reason);
}
