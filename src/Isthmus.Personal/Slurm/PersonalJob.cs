namespace Isthmus.Personal.Slurm;

/// <summary>
/// One job of the personal Slurm as squeue shows it: id (%A), state (%T), the nodes it runs on (%N), the nodes
/// it asked for by name (%n, -w; empty if none) and the reason for its state (%r).
/// </summary>
public readonly record struct PersonalJob(string Id, string State, string Nodes, string RequestedNodes, string Reason)
{
    /// <summary>squeue's -o format for <see cref="Parse"/>: the reason last, as it may hold spaces and commas.</summary>
    public const string SqueueFormat = "%A|%T|%N|%n|%r";

    /// <summary>A line of <see cref="SqueueFormat"/>; null if it has no id and state.</summary>
    public static PersonalJob? Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var p = line.Split('|', 5);
        if (p.Length < 2)
        {
            return null;
        }

        string At(int i) => p.Length > i ? p[i].Trim() : "";
        var requested = At(3);
        return new PersonalJob(At(0), At(1), At(2), requested == "(null)" ? "" : requested, At(4));
    }
}
