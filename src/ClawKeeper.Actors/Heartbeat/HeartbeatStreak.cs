using System.Collections.Immutable;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>A check that failed in a heartbeat of the current streak: its latest failing result and the heartbeat that saw it.</summary>
public sealed record StreakProblem(string Group, CheckResult Check, string HeartbeatId)
{
    public string Key => CheckStates.KeyOf(Group, Check.Check);
}

/// <summary>Pure bookkeeping of a failure streak's evidence (persisted in <see cref="CheckStates.Streak"/>).</summary>
public static class StreakEvidence
{
    /// <summary>
    /// The streak after a heartbeat: null when it passed; otherwise <paramref name="previous"/> (null when the
    /// streak starts now) with this heartbeat's problems added or replaced by their latest evidence.
    /// </summary>
    public static ImmutableDictionary<string, StreakProblem>? After(
        ImmutableDictionary<string, StreakProblem>? previous, bool failed, string heartbeatId, IEnumerable<(string Group, CheckResult Check)> problems)
    {
        if (!failed) return null;
        var next = (previous ?? ImmutableDictionary<string, StreakProblem>.Empty).ToBuilder();
        foreach (var (group, check) in problems)
            next[CheckStates.KeyOf(group, check.Check)] = new StreakProblem(group, check, check.CarriedFrom ?? heartbeatId);
        return next.ToImmutable();
    }

    /// <summary>A notification line for a streak problem; one that no longer fails says in which heartbeat it did.</summary>
    public static NotificationLine Line(string group, CheckResult check, string? failedEarlierIn) =>
        new(group, check.Check, check.Status.ToWire(), check.Observed, check.Threshold,
            failedEarlierIn is null ? check.Detail : $"(failed in {failedEarlierIn}, not failing now) {check.Detail}");
}
