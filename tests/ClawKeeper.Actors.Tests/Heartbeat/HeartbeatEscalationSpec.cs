using System.Collections.Immutable;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using Xunit;

namespace ClawKeeper.Actors.Tests.Heartbeat;

/// <summary>
/// The protocol's escalation rule, pure: three consecutive failed heartbeats (any round, any check, soft or
/// hard) raise one super_admin alert by e-mail and Discord with every problem of the streak, once per streak,
/// resolved with a notice when a heartbeat passes.
/// </summary>
public class HeartbeatEscalationSpec
{
    private static readonly DateTimeOffset Start = new(2026, 11, 28, 4, 0, 0, TimeSpan.Zero);

    private static readonly AlertPolicy Routed = new(TimeSpan.FromHours(4), new Dictionary<string, IReadOnlyList<string>>
    {
        ["super_admin"] = new[] { "email", "discord" },
        ["admin"] = new[] { "email", "discord" },
    });

    /// <summary>The decisions and what the supervisor persists after them, with the default retry policy (3 attempts) and threshold 3.</summary>
    private sealed class Monitor
    {
        public HeartbeatState State = HeartbeatState.Empty;
        public readonly List<QueuedNotification> Sent = new();
        private int _round;

        public HeartbeatReport Round(bool retry, params GroupReport[] groups)
        {
            var at = Start.AddMinutes(_round++);
            var decision = HeartbeatDecisions.DecideRound(State, HeartbeatDecisions.NextId(at, State.Latest?.Id), at, at.AddSeconds(1), groups,
                escalateAfterFailures: 3, dryRun: false, RetryPolicy.Default, FlappingPolicy.Default, retry);
            var plan = AlertDecisions.Plan(State.Incidents, decision.Report, Array.Empty<ClawKeeper.Platform.Alerts.AlertControl>(), decision.Report.CompletedAt, Routed);
            Sent.AddRange(plan.Notifications);
            var report = decision.Report with { Alerts = plan.Alerts };
            State = State.Apply(new HeartbeatRecorded(report)).Apply(new IncidentsUpdated(plan.Incidents)).Apply(new CheckStatesObserved(decision.States));
            return report;
        }

        public HeartbeatReport Full(params GroupReport[] groups) => Round(false, groups);

        public HeartbeatReport Retry(params GroupReport[] groups) => Round(true, groups);

        public IEnumerable<QueuedNotification> SentFor(string dedupKey, NotificationKind kind) =>
            Sent.Where(n => n.Notification.Kind == kind && n.Notification.DedupKeys.Contains(dedupKey));
    }

    private static GroupReport Group(string group, params (string Check, CheckStatus Status)[] checks) =>
        new(group, CheckStatusExtensions.Worst(checks.Select(c => c.Status)),
            checks.Select(c => new CheckResult(c.Check, c.Status, $"{c.Check} observed {c.Status}", "threshold", $"evidence of {c.Check}", 1)).ToList());

    /// <summary>A full round of two groups; <paramref name="failing"/> names the one check that fails (or none).</summary>
    private static GroupReport[] Platform(string? failing) => new[]
    {
        Group("task_queue", ("queue_depth", failing == "queue_depth" ? CheckStatus.Fail : CheckStatus.Pass),
            ("stuck_tasks", failing == "stuck_tasks" ? CheckStatus.Fail : CheckStatus.Pass)),
        Group("security_posture", ("api_keys_valid", failing == "api_keys_valid" ? CheckStatus.Fail : CheckStatus.Pass)),
    };

    private static bool IsEscalation(AlertReport alert) => alert.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey;

    [Fact]
    public void Rotating_failures_escalate_at_the_third_failed_heartbeat_with_every_problem_of_the_streak()
    {
        var monitor = new Monitor();
        var first = monitor.Full(Platform("queue_depth"));
        var second = monitor.Full(Platform("stuck_tasks"));
        var third = monitor.Full(Platform("api_keys_valid"));

        Assert.Equal(new[] { 1, 2, 3 }, new[] { first, second, third }.Select(r => r.ConsecutiveFailures));
        Assert.DoesNotContain(first.Alerts.Concat(second.Alerts), IsEscalation);
        var alert = Assert.Single(third.Alerts, IsEscalation);
        Assert.Equal(("super_admin", "critical"), (alert.Audience, alert.Severity));
        Assert.Equal(new[] { "email", "discord" }, alert.Channels);
        Assert.Contains("3 consecutive failed heartbeats", alert.Summary);
        Assert.Contains("security_posture/api_keys_valid", alert.Summary);
        Assert.Contains($"task_queue/queue_depth (in {first.Id})", alert.Summary);
        Assert.Contains($"task_queue/stuck_tasks (in {second.Id})", alert.Summary);

        // One notification to super_admin, both channels, every check of the streak with its evidence.
        var sent = Assert.Single(monitor.SentFor(HeartbeatDecisions.ConsecutiveFailuresDedupKey, NotificationKind.Firing));
        Assert.Equal("super_admin", sent.Notification.Audience);
        Assert.Equal(new[] { "discord", "email" }, sent.PendingChannels.Order(StringComparer.Ordinal));
        Assert.Equal(new[] { "security_posture/api_keys_valid", "task_queue/queue_depth", "task_queue/stuck_tasks" },
            sent.Notification.Lines.Select(l => $"{l.Group}/{l.Check}").Order(StringComparer.Ordinal));
        var earlier = sent.Notification.Lines.Single(l => l.Check == "queue_depth");
        Assert.Equal(("fail", "queue_depth observed Fail"), (earlier.Status, earlier.Observed));
        Assert.Contains($"failed in {first.Id}", earlier.Detail);
        Assert.Contains("evidence of queue_depth", earlier.Detail);
        Assert.Equal("evidence of api_keys_valid", sent.Notification.Lines.Single(l => l.Check == "api_keys_valid").Detail);
    }

    [Fact]
    public void A_passed_heartbeat_ends_the_streak_and_its_evidence()
    {
        var monitor = new Monitor();
        monitor.Full(Platform("queue_depth"));
        monitor.Full(Platform("stuck_tasks"));
        Assert.Equal(0, monitor.Full(Platform(null)).ConsecutiveFailures);
        Assert.Null(monitor.State.Checks.Streak);
        monitor.Full(Platform("api_keys_valid"));
        monitor.Full(Platform("api_keys_valid"));
        var third = monitor.Full(Platform("api_keys_valid"));
        var sent = Assert.Single(monitor.SentFor(HeartbeatDecisions.ConsecutiveFailuresDedupKey, NotificationKind.Firing));
        Assert.Equal(new[] { "api_keys_valid" }, sent.Notification.Lines.Select(l => l.Check)); // the earlier streak is not this one's evidence
        Assert.DoesNotContain("queue_depth", Assert.Single(third.Alerts, IsEscalation).Summary);
    }

    [Fact]
    public void A_persistent_failure_escalates_at_the_third_round_counting_the_retry_rounds()
    {
        var monitor = new Monitor();
        var full = monitor.Full(Platform("api_keys_valid"));
        Assert.Equal(("soft", "1/3"), (full.Groups[1].Checks[0].State, full.Groups[1].Checks[0].Attempt));
        var retry = monitor.Retry(Group("security_posture", ("api_keys_valid", CheckStatus.Fail)));
        Assert.Equal("soft", retry.Groups[1].Checks[0].State);
        Assert.DoesNotContain(full.Alerts.Concat(retry.Alerts), IsEscalation);
        var third = monitor.Retry(Group("security_posture", ("api_keys_valid", CheckStatus.Fail)));
        Assert.Equal(3, third.ConsecutiveFailures);
        Assert.Single(third.Alerts, IsEscalation);
    }

    [Fact]
    public void The_escalation_is_raised_once_per_streak_and_resolved_with_a_notice_when_a_heartbeat_passes()
    {
        var monitor = new Monitor();
        var reports = Enumerable.Range(0, 6).Select(i => monitor.Full(Platform(i % 2 == 0 ? "queue_depth" : "stuck_tasks"))).ToList();
        Assert.Equal(new[] { 1, 2, 3, 4, 5, 6 }, reports.Select(r => r.ConsecutiveFailures));
        Assert.Equal(new[] { 0, 0, 1, 0, 0, 0 }, reports.Select(r => r.Alerts.Count(IsEscalation)));
        Assert.Single(monitor.SentFor(HeartbeatDecisions.ConsecutiveFailuresDedupKey, NotificationKind.Firing));
        Assert.True(monitor.State.EscalationRaised);

        var passed = monitor.Full(Platform(null));
        Assert.Equal((HeartbeatStatus.Pass, 0), (passed.Status, passed.ConsecutiveFailures));
        Assert.False(monitor.State.EscalationRaised);
        var resolved = Assert.Single(monitor.SentFor(HeartbeatDecisions.ConsecutiveFailuresDedupKey, NotificationKind.Resolved));
        Assert.Equal("super_admin", resolved.Notification.Audience);
        Assert.Equal(new[] { "discord", "email" }, resolved.PendingChannels.Order(StringComparer.Ordinal));

        // The next streak is a new incident: escalated again at its third failed heartbeat (api_keys_valid: queue_depth
        // and stuck_tasks flipped so often above that they are flapping now, which would hold it).
        monitor.Full(Platform("api_keys_valid"));
        monitor.Full(Platform("api_keys_valid"));
        Assert.Single(monitor.Full(Platform("api_keys_valid")).Alerts, IsEscalation);
        Assert.Equal(2, monitor.SentFor(HeartbeatDecisions.ConsecutiveFailuresDedupKey, NotificationKind.Firing).Count());
    }

    [Fact]
    public void Escalation_is_held_while_every_problem_flaps_the_count_goes_on_and_a_steady_problem_raises_it()
    {
        var monitor = new Monitor();
        for (var i = 0; i < 10; i++) monitor.Full(Platform(i % 2 == 0 ? "queue_depth" : null));
        Assert.True(monitor.State.Checks.Checks["task_queue/queue_depth"].Flapping);

        var held = new[] { monitor.Full(Platform("queue_depth")), monitor.Full(Platform("queue_depth")), monitor.Full(Platform("queue_depth")) };
        Assert.Equal(new[] { 1, 2, 3 }, held.Select(r => r.ConsecutiveFailures));
        Assert.All(held, r => Assert.True(r.Groups[0].Checks[0].Flapping));
        Assert.DoesNotContain(held.SelectMany(r => r.Alerts), IsEscalation);

        // A problem that does not flap joins the streak: escalated now (the count was kept), with both checks.
        var steady = monitor.Full(Group("task_queue", ("queue_depth", CheckStatus.Fail), ("stuck_tasks", CheckStatus.Pass)),
            Group("security_posture", ("api_keys_valid", CheckStatus.Fail)));
        Assert.Equal(4, steady.ConsecutiveFailures);
        var alert = Assert.Single(steady.Alerts, IsEscalation);
        Assert.Contains("task_queue/queue_depth (flapping)", alert.Summary);
        Assert.Contains("security_posture/api_keys_valid", alert.Summary);
    }

    [Fact]
    public void A_data_integrity_fail_still_alerts_super_admin_in_the_first_heartbeat()
    {
        var monitor = new Monitor();
        var report = monitor.Full(Group("data_integrity", ("audit_log_continuous", CheckStatus.Fail)));
        var alert = Assert.Single(report.Alerts);
        Assert.Equal(("super_admin", HeartbeatDecisions.CheckDedupKey("data_integrity", "audit_log_continuous")), (alert.Audience, alert.DedupKey));
        Assert.Equal("hard", report.Groups[0].Checks[0].State);
        Assert.Equal(1, report.ConsecutiveFailures);
        var sent = Assert.Single(monitor.Sent);
        Assert.Equal(("super_admin", NotificationKind.Firing), (sent.Notification.Audience, sent.Notification.Kind));
    }

    [Fact]
    public void The_streak_is_kept_in_the_persisted_check_states_and_read_back()
    {
        var monitor = new Monitor();
        monitor.Full(Platform("queue_depth"));
        monitor.Full(Platform("stuck_tasks"));
        using var system = Akka.Actor.ActorSystem.Create("streak");
        var serializer = new ClawKeeper.Actors.Serialization.ClawKeeperSerializer((Akka.Actor.ExtendedActorSystem)system);
        var observed = new CheckStatesObserved(monitor.State.Checks);
        var back = (CheckStatesObserved)serializer.FromBinary(serializer.ToBinary(observed), serializer.Manifest(observed));
        Assert.Equal(new[] { "task_queue/queue_depth", "task_queue/stuck_tasks" }, back.States.Streak!.Keys.Order(StringComparer.Ordinal));

        // A state written before streaks were kept reads with none (the next escalation names what fails from then on).
        var old = """{"states":{"checks":{},"cycleFailed":true,"fullRoundStartedAt":null,"fullRoundWindowStart":null}}"""u8.ToArray();
        var legacy = (CheckStatesObserved)serializer.FromBinary(old, "check-states-observed.v1");
        Assert.Null(legacy.States.Streak);
        Assert.Empty(legacy.States.Checks);
    }
}
