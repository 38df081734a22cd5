using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>A decided round: the report, the checks' next soft/hard states, and what changed per check.</summary>
public sealed record RoundDecision(HeartbeatReport Report, CheckStates States, IReadOnlyList<CheckObservation> Observations);

/// <summary>Pure decisions of the heartbeat: ids, the outcome of a round, soft/hard states, alerts, write blocks.</summary>
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

    /// <summary>The report of a round with every problem hard at once (<see cref="RetryPolicy.Immediate"/>).</summary>
    public static HeartbeatReport Decide(
        HeartbeatState state,
        string heartbeatId,
        DateTimeOffset startedAt,
        DateTimeOffset completedAt,
        IReadOnlyList<GroupReport> groups,
        int escalateAfterFailures,
        bool dryRun) =>
        DecideRound(state, heartbeatId, startedAt, completedAt, groups, escalateAfterFailures, dryRun, RetryPolicy.Immediate, FlappingPolicy.Default).Report;

    public static string FlappingDedupKey(string group, string check) => $"flapping:{group}/{check}:{AudienceOf(group)}";

    /// <summary>Who hears about a check's flapping: super_admin for the books, admin for the rest.</summary>
    public static string AudienceOf(string group) => SuperAdminGroups.Contains(group) ? "super_admin" : "admin";

    /// <summary>
    /// Builds the report of a finished round and the checks' next soft/hard states. The protocol's rule, literally:
    /// every round is a heartbeat (full, retry, on demand, re-probe: each writes an <c>agent_runs</c> row); it fails
    /// when any check fails or errors, soft or hard, whichever check it is; the failure count goes up by one per
    /// failed heartbeat and back to zero at a passed one. The configured number of consecutive failed heartbeats
    /// raises ONE super_admin alert (email and Discord) per streak, with every check that failed in the streak as
    /// evidence; it is held (the count goes on) while every problem of the current heartbeat is flapping. Soft/hard
    /// states no longer delay this: they decide the retry cadence and are shown per check (docs/alerting.md).
    /// A failing data-integrity check is hard at once and alerts super_admin at once, with its evidence,
    /// once per incident (flapping or not: the books are never muted). A check that starts flapping gets
    /// one flapping notice instead of an alert per flip.
    /// <para>
    /// In a retry round <paramref name="groups"/> holds only the re-run checks; the report carries the
    /// others from the previous report (marked <c>carriedFrom</c>).
    /// </para>
    /// </summary>
    public static RoundDecision DecideRound(
        HeartbeatState state,
        string heartbeatId,
        DateTimeOffset startedAt,
        DateTimeOffset completedAt,
        IReadOnlyList<GroupReport> groups,
        int escalateAfterFailures,
        bool dryRun,
        RetryPolicy retry,
        FlappingPolicy flapping,
        bool retryRound = false,
        DateTimeOffset? windowStart = null)
    {
        var (states, observations) = state.Checks.Observe(groups, retryRound, completedAt, retry, flapping);
        var merged = retryRound && state.Latest is { } latest ? MergeRetry(latest, groups) : groups;
        var reportGroups = Annotate(merged, states, retry);

        // ARCHITECTURE.md §1: a heartbeat is every round that writes an agent_runs row (scheduled, retry, on demand,
        // re-probe); it fails when any check fails or errors, soft or hard, whichever check it is.
        var problems = reportGroups
            .SelectMany(g => g.Checks.Where(c => c.Status.IsProblem()).Select(c => (g.Group, Check: c)))
            .ToList();
        var failed = reportGroups.Count == 0 || problems.Count > 0 || reportGroups.Any(g => g.Status.IsProblem());
        var consecutive = failed ? state.ConsecutiveFailures + 1 : 0;
        var streak = StreakEvidence.After(state.ConsecutiveFailures == 0 ? null : state.Checks.Streak, failed, heartbeatId, problems);
        states = states with { Streak = streak };
        if (!retryRound)
            states = states with { FullRoundStartedAt = startedAt, FullRoundWindowStart = windowStart };

        var alerts = new List<AlertReport>();
        foreach (var group in groups.Where(g => SuperAdminGroups.Contains(g.Group)))
            foreach (var check in group.Checks.Where(c => c.Status == CheckStatus.Fail))
            {
                var key = CheckDedupKey(group.Group, check.Check);
                if (state.OpenAlerts.Contains(key)) continue;
                alerts.Add(new AlertReport("super_admin", new[] { "email", "discord" }, key, "critical",
                    $"{group.Group}/{check.Check} failed: {check.Observed}. {check.Detail}", "recorded"));
            }

        foreach (var started in observations.Where(o => o.StartedFlapping))
        {
            var key = FlappingDedupKey(started.Group, started.Check);
            if (state.OpenAlerts.Contains(key)) continue;
            var changes = Enumerable.Range(1, Math.Max(0, started.State.History.Length - 1)).Count(i => started.State.History[i] != started.State.History[i - 1]);
            alerts.Add(new AlertReport(AudienceOf(started.Group), new[] { "email", "discord" }, key, "warning",
                $"{started.Key} is flapping: {changes} changes in its last {started.State.History.Length} results " +
                $"(weighted {started.State.FlapRatio:P0} > {flapping.High:P0}); now {started.State.Status.ToWire()}. " +
                $"Its alerts are held back until it settles below {flapping.Low:P0}", "recorded"));
        }

        // Held (not counted less) while every problem of this heartbeat flaps; the next heartbeat with a steady problem raises it.
        var allFlapping = problems.Count > 0 && problems.All(p => p.Check.Flapping == true) && !reportGroups.Any(g => g.Status.IsProblem() && !g.Checks.Any(c => c.Status.IsProblem()));
        if (failed && consecutive >= escalateAfterFailures && !state.EscalationRaised && !allFlapping)
            alerts.Add(EscalationAlert(consecutive, reportGroups.Count == 0, problems, streak!));
        var report = new HeartbeatReport(
            heartbeatId,
            startedAt,
            completedAt,
            failed ? HeartbeatStatus.Fail : HeartbeatStatus.Pass,
            consecutive,
            state.WriteBlock.ToReport(),
            reportGroups,
            Array.Empty<ActionReport>(),
            alerts,
            dryRun,
            Rechecked: retryRound ? groups.SelectMany(g => g.Checks.Select(c => CheckStates.KeyOf(g.Group, c.Check))).ToList() : null);
        return new RoundDecision(report, states, observations);
    }

    /// <summary>
    /// The super_admin escalation of a streak: what fails now, and every check that failed in a heartbeat of the
    /// streak with its latest evidence (<see cref="AlertReport.Evidence"/>), so rotating failures are all named.
    /// </summary>
    private static AlertReport EscalationAlert(int consecutive, bool noGroups, IReadOnlyList<(string Group, CheckResult Check)> now, ImmutableDictionary<string, StreakProblem> streak)
    {
        var failingNow = now.Select(p => $"{p.Group}/{p.Check.Check}{(p.Check.Flapping == true ? " (flapping)" : "")}").ToList();
        var nowKeys = now.Select(p => CheckStates.KeyOf(p.Group, p.Check.Check)).ToHashSet(StringComparer.Ordinal);
        var earlier = streak.Values.Where(p => !nowKeys.Contains(p.Key)).OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
        var summary = $"{consecutive} consecutive failed heartbeats; failing now: {(noGroups ? "no check groups ran" : failingNow.Count == 0 ? "(no check result)" : string.Join(", ", failingNow))}";
        if (earlier.Count > 0)
            summary += $"; failed earlier in the streak: {string.Join(", ", earlier.Select(p => $"{p.Key} (in {p.HeartbeatId})"))}";
        var evidence = now.Select(p => StreakEvidence.Line(p.Group, p.Check, null))
            .Concat(earlier.Select(p => StreakEvidence.Line(p.Group, p.Check, p.HeartbeatId)))
            .ToList();
        return new AlertReport("super_admin", new[] { "email", "discord" }, ConsecutiveFailuresDedupKey, "critical", summary, "recorded") { Evidence = evidence };
    }

    /// <summary>The previous report's groups with the re-run checks replaced by their fresh results; the others marked as carried.</summary>
    public static IReadOnlyList<GroupReport> MergeRetry(HeartbeatReport previous, IReadOnlyList<GroupReport> fresh)
    {
        var freshByKey = fresh.SelectMany(g => g.Checks.Select(c => (Key: CheckStates.KeyOf(g.Group, c.Check), Check: c))).ToDictionary(x => x.Key, x => x.Check);
        var groups = previous.Groups.Select(g =>
        {
            var checks = g.Checks.Select(c => freshByKey.Remove(CheckStates.KeyOf(g.Group, c.Check), out var now)
                ? now
                : c with { CarriedFrom = c.CarriedFrom ?? previous.Id }).ToList();
            return new GroupReport(g.Group, CheckStatusExtensions.Worst(checks.Select(c => c.Status)), checks);
        }).ToList();
        // A re-run check the previous report did not have (should not happen): keep it rather than lose it.
        foreach (var group in fresh)
        {
            var extra = group.Checks.Where(c => freshByKey.ContainsKey(CheckStates.KeyOf(group.Group, c.Check))).ToList();
            if (extra.Count == 0) continue;
            var index = groups.FindIndex(g => g.Group == group.Group);
            if (index < 0) groups.Add(new GroupReport(group.Group, CheckStatusExtensions.Worst(extra.Select(c => c.Status)), extra));
            else
            {
                var checks = groups[index].Checks.Concat(extra).ToList();
                groups[index] = new GroupReport(group.Group, CheckStatusExtensions.Worst(checks.Select(c => c.Status)), checks);
            }
        }
        return groups;
    }

    private static IReadOnlyList<GroupReport> Annotate(IReadOnlyList<GroupReport> groups, CheckStates states, RetryPolicy retry) =>
        groups.Select(g => g with
        {
            Checks = g.Checks.Select(c =>
            {
                if (!states.Checks.TryGetValue(CheckStates.KeyOf(g.Group, c.Check), out var s)) return c;
                return c with { State = s.Soft ? "soft" : "hard", Attempt = $"{s.Attempt}/{retry.MaxAttempts}", Flapping = s.Flapping };
            }).ToList(),
        }).ToList();

    /// <summary>Incidents still open after a report: raised ones stay open until their check (or the heartbeat) passes again.</summary>
    public static ImmutableHashSet<string> OpenAlertsAfter(ImmutableHashSet<string> open, HeartbeatReport report)
    {
        var next = open.Union(report.Alerts.Select(a => a.DedupKey));
        if (report.Status == HeartbeatStatus.Pass) next = next.Remove(ConsecutiveFailuresDedupKey);
        foreach (var (group, check) in report.AllChecks())
        {
            // check:{group}/{check}:{audience} — the check's own alerts (super_admin evidence, admin repair notices).
            if (check.Status is CheckStatus.Pass or CheckStatus.Warn or CheckStatus.Skipped)
                next = next.Except(next.Where(k => k.StartsWith($"check:{group}/{check.Check}:", StringComparison.Ordinal)).ToList());
            if (check.Flapping != true)
                next = next.Remove(FlappingDedupKey(group, check.Check));
        }
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
