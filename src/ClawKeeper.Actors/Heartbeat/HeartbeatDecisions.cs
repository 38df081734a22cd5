using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>Pure decisions of the heartbeat: ids, the outcome of a round, alerts, write blocks.</summary>
public static class HeartbeatDecisions
{
    public const string ConsecutiveFailuresDedupKey = "heartbeat:consecutive-failures:super_admin";

    /// <summary>Groups whose failures alert super_admin at once (ARCHITECTURE.md §1 actions).</summary>
    private static readonly IReadOnlySet<string> SuperAdminGroups = new HashSet<string> { CheckGroups.DataIntegrity };

    public static string CheckDedupKey(string group, string check) => $"check:{group}/{check}:super_admin";

    /// <summary><c>heartbeat-2026-11-28T04:00:00Z</c>; a second heartbeat in the same second gets milliseconds.</summary>
    public static string NextId(DateTimeOffset startedAt, string? previousId)
    {
        var id = "heartbeat-" + startedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        if (id != previousId) return id;
        return "heartbeat-" + startedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");
    }

    /// <summary>A full re-verification is due when none ran yet, on the slow cadence, or on demand.</summary>
    public static bool FullVerificationDue(HeartbeatState state, DateTimeOffset now, TimeSpan every, bool requested) =>
        requested || state.Watermarks.LastFullVerificationAt is not { } last || now - last >= every;

    /// <summary>
    /// Builds the report of a finished round: pass only when no check failed or errored; the
    /// failure count goes up by one or back to zero; the configured number of consecutive
    /// failures raises one super_admin alert (email and Discord) per streak; a failing
    /// data-integrity check alerts super_admin at once, with its evidence, once per incident.
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

        foreach (var group in groups.Where(g => SuperAdminGroups.Contains(g.Group)))
            foreach (var check in group.Checks.Where(c => c.Status == CheckStatus.Fail))
            {
                var key = CheckDedupKey(group.Group, check.Check);
                if (state.OpenAlerts.Contains(key)) continue;
                alerts.Add(new AlertReport("super_admin", new[] { "email", "discord" }, key, "critical",
                    $"{group.Group}/{check.Check} failed: {check.Observed}. {check.Detail}", "recorded"));
            }

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
            state.WriteBlock.ToReport(),
            groups,
            Array.Empty<ActionReport>(),
            alerts,
            dryRun);
    }

    /// <summary>Incidents still open after a report: raised ones stay open until their check (or the heartbeat) passes again.</summary>
    public static ImmutableHashSet<string> OpenAlertsAfter(ImmutableHashSet<string> open, HeartbeatReport report)
    {
        var next = open.Union(report.Alerts.Select(a => a.DedupKey));
        if (report.Status == HeartbeatStatus.Pass) next = next.Remove(ConsecutiveFailuresDedupKey);
        foreach (var (group, check) in report.AllChecks())
            if (check.Status is CheckStatus.Pass or CheckStatus.Warn or CheckStatus.Skipped)
                next = next.Remove(CheckDedupKey(group, check.Check));
        if (report.OpenBreakers is { } openBreakers)
            foreach (var key in next.Where(k => k.StartsWith("breaker:", StringComparison.Ordinal)).ToList())
                if (!openBreakers.Any(p => key == Integrations.BreakerDecisions.DedupKey(p)))
                    next = next.Remove(key);
        return next;
    }

    /// <summary>The data-integrity failures that call for a write block (errors are not findings: nothing was shown broken).</summary>
    public static IntegrityFailure? IntegrityFailureOf(IReadOnlyList<GroupReport> groups)
    {
        var failing = groups.Where(g => g.Group == CheckGroups.DataIntegrity)
            .SelectMany(g => g.Checks.Where(c => c.Status == CheckStatus.Fail))
            .ToList();
        if (failing.Count == 0) return null;
        var reason = string.Join(" | ", failing.Select(c => $"{c.Check}: {Shorten(c.Detail, 300)}"));
        return new IntegrityFailure(reason, failing.Select(c => c.Check).ToList());
    }

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";
}
