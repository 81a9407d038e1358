using System.Globalization;

namespace Isthmus.Personal.Slurm;

/// <summary>
/// slurm.conf of the personal Slurm (22.05, dynamic nodes). The controller and every node have their own copy
/// (paths and the munge socket differ, as on separate machines). Why the settings:
/// <list type="bullet">
/// <item>No NodeName lines: every node is a <c>slurmd -Z</c> that registers itself; its NodeAddr is where the
/// registration came from, its VIP. Partition <c>Nodes=ALL</c>, cons_tres, MaxNodeCount and no fan-out, as
/// dynamic nodes need.</item>
/// <item><c>CommunicationParameters=NoInAddrAny</c>: slurmd, slurmstepd and srun bind the address their host
/// name resolves to, which under Isthmus is the node's VIP (and so its loopback image). Several personal nodes
/// on one host (the local backend) then each listen on SlurmdPort of their own image instead of colliding on
/// 0.0.0.0.</item>
/// <item>The daemons run as the user (SlurmUser = SlurmdUser): nothing needs root. cgroup/v1 without automount
/// and proctrack/linuxproc, task/none: no cgroup access needed (none under <c>ip netns exec</c> either).</item>
/// </list>
/// </summary>
public sealed record PersonalSlurmConfig(
    string ClusterName,
    string CtldName,
    string CtldVip,
    int CtldPort,
    int SlurmdPort,
    string User,
    string MungeSocket,
    string StateDirectory,
    string SpoolDirectory,
    string LogFile,
    string? TaskProlog)
{
    public const int MaxNodes = 1024;

    /// <summary>Writes <c>slurm.conf</c> and <c>cgroup.conf</c> into <paramref name="etc"/>; returns slurm.conf's path.</summary>
    public string Write(string etc, bool controller)
    {
        Directory.CreateDirectory(etc);
        File.WriteAllText(Path.Combine(etc, "cgroup.conf"), "CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n");
        var file = Path.Combine(etc, "slurm.conf");
        var log = controller ? $"SlurmctldLogFile={LogFile}" : $"SlurmdLogFile={LogFile}";
        File.WriteAllText(file, string.Create(CultureInfo.InvariantCulture, $"""
            # Personal Slurm of the Isthmus cluster '{ClusterName}' (written by 'isthmus up'; rewritten at every up).
            ClusterName={ClusterName}
            SlurmctldHost={CtldName}({CtldVip})
            SlurmctldPort={CtldPort}
            SlurmdPort={SlurmdPort}
            SlurmUser={User}
            SlurmdUser={User}
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket={MungeSocket}
            CommunicationParameters=NoInAddrAny
            StateSaveLocation={StateDirectory}
            SlurmdSpoolDir={SpoolDirectory}
            TmpFS={SpoolDirectory}
            SlurmctldPidFile={StateDirectory}/slurmctld.pid
            SlurmdPidFile={SpoolDirectory}/slurmd.pid
            {log}
            SlurmctldDebug=info
            SlurmdDebug=info
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            {(TaskProlog is null ? "" : "TaskProlog=" + TaskProlog)}
            MpiDefault=none
            SwitchType=switch/none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            JobCompType=jobcomp/none
            SchedulerType=sched/backfill
            SchedulerParameters=batch_sched_delay=0
            MailProg=/bin/true
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            ReturnToService=2
            SlurmdTimeout=60
            MinJobAge=300
            InactiveLimit=0
            KillWait=5
            JobRequeue=1
            MaxNodeCount={MaxNodes}
            TreeWidth=65533
            PartitionName=isthmus Nodes=ALL Default=YES MaxTime=INFINITE State=UP

            """));
        return file;
    }
}
