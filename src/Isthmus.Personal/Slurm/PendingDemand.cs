namespace Isthmus.Personal.Slurm;

/// <summary>
/// Which pending personal jobs a new node could start, from Slurm's pending reason (squeue %r). Only these are
/// demand for the elastic manager: a job waiting for a node that left (-w naming it: ReqNodeNotAvail), for
/// another job (Dependency), for its start time (BeginTime; a requeued job waits there too) or for a hold would
/// otherwise keep the cluster grown to max for nothing. Nor is a job that names its nodes (-w): a new node has
/// another name, and such a job is pending with reason None for a moment after sbatch, which would grow the site
/// while the named node is about to run it.
/// </summary>
public static class PendingDemand
{
    /// <summary>Reasons meaning "not enough nodes now": more nodes can help. None = not yet evaluated by the scheduler.</summary>
    private static readonly HashSet<string> NodesHelp = new(StringComparer.Ordinal)
    {
        "None", "Resources", "Priority", "PartitionNodeLimit", "PartitionConfig", "NodeDown", "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions",
    };

    /// <summary>A pending job that one more personal node could start.</summary>
    public static bool IsDemand(PersonalJob job) =>
        job.State == "PENDING" && job.RequestedNodes.Length == 0 && NewNodesCanHelp(job.Reason);

    /// <param name="reason">squeue's %r for a PENDING job, e.g. "Resources" or "ReqNodeNotAvail, UnavailableNodes:a2".</param>
    public static bool NewNodesCanHelp(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        // Reasons with details carry them after a comma: the code is the part before it.
        var code = reason.Split(',', 2)[0].Trim().Trim('(', ')');
        return NodesHelp.Contains(code);
    }
}
