using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>Pure decisions of the heartbeat: ids, the outcome of a round, and escalation.</summary>
public static class HeartbeatDecisions
{
    public const string ConsecutiveFailuresDedupKey = "heartbeat:consecutive-failures:super_admin";

    /// <summary><c>heartbeat-2026-11-28T04:00:00Z</c>; a second heartbeat in the same second gets milliseconds.</summary>
    public static string NextId(DateTimeOffset startedAt, string? previousId)
    {
        var id = "heartbeat-" + startedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        if (id != previousId) return id;
        return "heartbeat-" + startedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");
    }

    /// <summary>
    /// Builds the report of a finished round: pass only when no check failed or errored; the
    /// failure count goes up by one or back to zero; the configured number of consecutive
    /// failures raises one super_admin alert (email and Discord) until a heartbeat passes again.
    /// </summary>
    public static HeartbeatReport Decide(
        HeartbeatState state,
        string heartbeatId,
        DateTimeOffset startedAt,
        DateTimeOffset completedAt,
        IReadOnlyList<GroupReport> groups,
        int escalateAfterFailures,
        bool dryRun)
    {
        var failed = groups.Count == 0 || groups.Any(g => g.Status.IsProblem());
        var consecutive = failed ? state.ConsecutiveFailures + 1 : 0;
        var alerts = new List<AlertReport>();
        if (failed && consecutive >= escalateAfterFailures && !state.EscalationRaised)
        {
            var problems = groups.SelectMany(g => g.Checks.Where(c => c.Status.IsProblem()).Select(c => $"{g.Group}/{c.Check}")).ToList();
            alerts.Add(new AlertReport(
                Audience: "super_admin",
                Channels: new[] { "email", "discord" },
                DedupKey: ConsecutiveFailuresDedupKey,
                Severity: "critical",
                Summary: $"{consecutive} consecutive failed heartbeats; failing now: {(problems.Count == 0 ? "no check groups ran" : string.Join(", ", problems))}",
                Delivery: "recorded"));
        }
        return new HeartbeatReport(
            heartbeatId,
            startedAt,
            completedAt,
            failed ? HeartbeatStatus.Fail : HeartbeatStatus.Pass,
            consecutive,
            new WriteBlockReport(false),
            groups,
            Array.Empty<ActionReport>(),
            alerts,
            dryRun);
    }
}
