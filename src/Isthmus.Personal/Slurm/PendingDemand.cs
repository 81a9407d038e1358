namespace Isthmus.Personal.Slurm;

/// <summary>
/// Which pending personal jobs a new node could start, from Slurm's pending reason (squeue %r). Only these are
/// demand for the elastic manager: a job waiting for a node that left (-w naming it: ReqNodeNotAvail), for
/// another job (Dependency), for its start time (BeginTime; a requeued job waits there too) or for a hold would
/// otherwise keep the cluster grown to max for nothing. Nor is a job that names its nodes (-w): a new node has
/// another name. Nor is a job whose reason is still None: that is a job the scheduler has not looked at yet
/// (every job has it for a moment after sbatch); one that idle nodes can run starts, and one that needs more
/// nodes gets Resources (or Priority, PartitionNodeLimit...) at the scheduler's first look, a second later. CI
/// saw the manager grow a site for an Open MPI job that was about to start on the two idle nodes.
/// </summary>
public static class PendingDemand
{
    /// <summary>Reasons meaning "not enough nodes now": more nodes can help.</summary>
    private static readonly HashSet<string> NodesHelp = new(StringComparer.Ordinal)
    {
        "Resources", "Priority", "PartitionNodeLimit", "PartitionConfig", "NodeDown", "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions",
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
