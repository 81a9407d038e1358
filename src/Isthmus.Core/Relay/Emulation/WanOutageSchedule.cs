namespace Isthmus.Core.Relay.Emulation;

/// <summary>
/// <c>outage=DURATION@AT[/EVERY]</c>: the WAN is down from <paramref name="At"/> after the router started, for
/// <paramref name="Duration"/>, and again every <paramref name="Every"/> after that when given.
/// </summary>
public sealed record WanOutageSchedule(TimeSpan Duration, TimeSpan At, TimeSpan? Every)
{
    /// <summary>Whether the WAN is down <paramref name="sinceStart"/> after the router started.</summary>
    public bool IsOut(TimeSpan sinceStart)
    {
        if (sinceStart < At)
        {
            return false;
        }

        var into = sinceStart - At;
        if (Every is { } every)
        {
            into = TimeSpan.FromTicks(into.Ticks % every.Ticks);
        }

        return into < Duration;
    }

    public override string ToString() =>
        $"{WanEmulationSpec.FormatDuration(Duration)}@{WanEmulationSpec.FormatDuration(At)}" + (Every is { } e ? "/" + WanEmulationSpec.FormatDuration(e) : "");
}
