using Isthmus.Personal.Schedulers;
using Xunit;

namespace Isthmus.Core.Tests.Personal;

public sealed class SgeSiteSchedulerTests
{
    // qstat -u USER of Son of Grid Engine 8.1.9, as printed with a running, a queued, a held, an error and a
    // deleting job (column widths as qstat prints them).
    private const string Qstat = """
        job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID 
        -----------------------------------------------------------------------------------------------------------------
              7 0.55500 isthmus-a1 root         r     12/02/2026 20:41:07 all.q@vm                           1        
              8 0.00000 isthmus-a2 root         qw    12/02/2026 20:41:09                                    1        
              9 0.00000 isthmus-a3 root         hqw   12/02/2026 20:41:10                                    1        
             10 0.00000 isthmus-a4 root         Eqw   12/02/2026 20:41:11                                    1        
             11 0.55500 isthmus-a5 root         dr    12/02/2026 20:41:12 all.q@vm                           1        
        """;

    [Fact]
    public void Qstat_EveryRow_IdAndState() =>
        Assert.Equal([("7", "r"), ("8", "qw"), ("9", "hqw"), ("10", "Eqw"), ("11", "dr")], SgeSiteScheduler.ParseQstat(Qstat));

    [Fact]
    public void Qstat_Empty_NoRows() => Assert.Empty(SgeSiteScheduler.ParseQstat(""));

    [Theory]
    [InlineData("r", ProxyJobState.Running)]
    [InlineData("t", ProxyJobState.Running)]
    [InlineData("Rr", ProxyJobState.Running)]
    [InlineData("dr", ProxyJobState.Running)]
    [InlineData("qw", ProxyJobState.Pending)]
    [InlineData("hqw", ProxyJobState.Pending)]
    [InlineData("s", ProxyJobState.Pending)]
    [InlineData("Eqw", ProxyJobState.Gone)]
    public void States_AsProxiesSeeThem(string state, ProxyJobState expected) => Assert.Equal(expected, SgeSiteScheduler.StateOf(state));

    [Theory]
    [InlineData("30", 1800)]
    [InlineData("30:15", 1815)]
    [InlineData("02:00:00", 7200)]
    [InlineData("1-02", 93600)]
    [InlineData("1-02:30", 95400)]
    [InlineData("2-00:00:05", 172805)]
    public void Walltime_InSlurmForms_Seconds(string walltime, long seconds) => Assert.Equal(seconds, SgeSiteScheduler.WalltimeSeconds(walltime));
}
