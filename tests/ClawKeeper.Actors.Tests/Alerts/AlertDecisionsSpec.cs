using System.Collections.Immutable;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Platform.Alerts;
using Xunit;

namespace ClawKeeper.Actors.Tests.Alerts;

/// <summary>Grouping, reminders, acknowledgements, silences and resolved notices, without actors.</summary>
public class AlertDecisionsSpec
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 28, 4, 0, 0, TimeSpan.Zero);
    private static readonly AlertPolicy Policy = new(TimeSpan.FromHours(4),
        new Dictionary<string, IReadOnlyList<string>> { ["super_admin"] = new[] { "email", "discord" }, ["admin"] = new[] { "email" } });

    private sealed class Platform
    {
        public HeartbeatState State = HeartbeatState.Empty;
        public readonly List<AlertControl> Controls = new();
        public int EscalateAfter = 3;

        /// <summary>One heartbeat at <paramref name="at"/> with the given data-integrity check statuses.</summary>
        public AlertPlan Beat(DateTimeOffset at, params (string Check, CheckStatus Status)[] checks)
        {
            var group = new GroupReport(CheckGroups.DataIntegrity, CheckStatusExtensions.Worst(checks.Select(c => c.Status)),
                checks.Select(c => new CheckResult(c.Check, c.Status, $"observed {c.Check}", "threshold", $"evidence of {c.Check}", 3)).ToList());
            var report = HeartbeatDecisions.Decide(State, HeartbeatDecisions.NextId(at, State.Latest?.Id), at, at.AddSeconds(1), new[] { group }, EscalateAfter, false);
            var plan = AlertDecisions.Plan(State.Incidents, report, Controls, at, Policy);
            State = State.Apply(new HeartbeatRecorded(report)).Apply(new IncidentsUpdated(plan.Incidents)).Apply(new NotificationsQueued(plan.Notifications));
            return plan;
        }
    }

    private static readonly (string, CheckStatus)[] FiveFailures =
    {
        ("audit_log_continuous", CheckStatus.Fail), ("financial_totals_balance", CheckStatus.Fail), ("no_orphaned_records", CheckStatus.Fail),
        ("rls_policies_active", CheckStatus.Fail), ("tenant_isolation", CheckStatus.Fail),
    };

    [Fact]
    public void Five_failures_in_one_heartbeat_are_one_message_per_audience_on_both_channels()
    {
        var platform = new Platform();
        var plan = platform.Beat(T0, FiveFailures);
        var notification = Assert.Single(plan.Notifications);
        Assert.Equal(NotificationKind.Firing, notification.Notification.Kind);
        Assert.Equal("super_admin", notification.Notification.Audience);
        Assert.Equal(5, notification.Notification.Lines.Count);
        Assert.Equal(5, notification.Notification.DedupKeys.Count);
        Assert.Equal(new[] { "discord", "email" }, notification.PendingChannels.Order());
        Assert.All(plan.Alerts, a => Assert.Equal("queued: discord+email", a.Delivery));
        Assert.Contains("evidence of audit_log_continuous", notification.Notification.Summary);
    }

    [Fact]
    public void A_persisting_problem_is_reminded_on_the_interval_not_every_heartbeat_and_an_ack_stops_reminders()
    {
        var platform = new Platform { EscalateAfter = 100 }; // this spec is about one incident, not the escalation
        platform.Beat(T0, ("audit_log_continuous", CheckStatus.Fail));
        Assert.Empty(platform.Beat(T0.AddMinutes(30), ("audit_log_continuous", CheckStatus.Fail)).Notifications);
        Assert.Empty(platform.Beat(T0.AddHours(3), ("audit_log_continuous", CheckStatus.Fail)).Notifications);
        var reminder = Assert.Single(platform.Beat(T0.AddHours(4), ("audit_log_continuous", CheckStatus.Fail)).Notifications);
        Assert.Equal(NotificationKind.Reminder, reminder.Notification.Kind);

        platform.Controls.Add(new AlertControl(1, "ack", "data_integrity/audit_log_continuous", null, "dana", "looking into it", T0.AddHours(5)));
        Assert.Empty(platform.Beat(T0.AddHours(9), ("audit_log_continuous", CheckStatus.Fail)).Notifications);
        Assert.True(platform.State.Incidents.Values.Single().Acknowledged);

        var resolved = Assert.Single(platform.Beat(T0.AddHours(10), ("audit_log_continuous", CheckStatus.Pass)).Notifications);
        Assert.Equal(NotificationKind.Resolved, resolved.Notification.Kind);
        // The notice shows the recovered check as it is now.
        var recovered = Assert.Single(resolved.Notification.Lines);
        Assert.Equal(("data_integrity", "audit_log_continuous", "pass"), (recovered.Group, recovered.Check, recovered.Status));
        Assert.Empty(platform.State.Incidents);

        // The same problem coming back is a new incident, notified again (the old ack does not cover it).
        Assert.Equal(NotificationKind.Firing, Assert.Single(platform.Beat(T0.AddHours(11), ("audit_log_continuous", CheckStatus.Fail)).Notifications).Notification.Kind);
    }

    [Fact]
    public void A_silenced_alert_is_kept_and_its_resolved_notice_goes_out_when_the_window_ends()
    {
        var platform = new Platform();
        platform.Controls.Add(new AlertControl(1, "silence", "data_integrity", T0.AddHours(2), "dana", "maintenance", T0.AddMinutes(-1)));
        var silenced = platform.Beat(T0, ("no_orphaned_records", CheckStatus.Fail));
        Assert.Empty(silenced.Notifications);
        Assert.StartsWith("silenced until 2026-11-28 06:00:00Z", Assert.Single(silenced.Alerts).Delivery);
        Assert.True(platform.State.Incidents.Values.Single().Suppressed);

        Assert.Empty(platform.Beat(T0.AddHours(1), ("no_orphaned_records", CheckStatus.Pass)).Notifications); // gone inside the window
        Assert.Single(platform.State.Incidents);
        var resolved = Assert.Single(platform.Beat(T0.AddHours(3), ("no_orphaned_records", CheckStatus.Pass)).Notifications);
        Assert.Equal(NotificationKind.Resolved, resolved.Notification.Kind);
        Assert.Empty(platform.State.Incidents);
    }

    [Fact]
    public void A_silence_that_ends_with_the_problem_still_there_notifies_then()
    {
        var platform = new Platform();
        platform.Controls.Add(new AlertControl(1, "silence", "data_integrity/rls_policies_active", T0.AddHours(1), "dana", "migration", T0));
        Assert.Empty(platform.Beat(T0, ("rls_policies_active", CheckStatus.Fail)).Notifications);
        var firing = Assert.Single(platform.Beat(T0.AddHours(2), ("rls_policies_active", CheckStatus.Fail)).Notifications);
        Assert.Equal(NotificationKind.Firing, firing.Notification.Kind);
        Assert.False(platform.State.Incidents.Values.Single().Suppressed);
    }

    [Fact]
    public void Three_failed_heartbeats_escalate_once_and_recovery_sends_the_resolved_notice()
    {
        var platform = new Platform();
        var queued = new List<QueuedNotification>();
        for (var i = 0; i < 4; i++)
            queued.AddRange(platform.Beat(T0.AddMinutes(i), ("audit_log_continuous", CheckStatus.Error)).Notifications);
        var escalation = Assert.Single(queued);
        Assert.Equal(new[] { HeartbeatDecisions.ConsecutiveFailuresDedupKey }, escalation.Notification.DedupKeys);
        Assert.Contains("3 consecutive failed heartbeats", escalation.Notification.Summary);

        var resolved = Assert.Single(platform.Beat(T0.AddMinutes(5), ("audit_log_continuous", CheckStatus.Pass)).Notifications);
        Assert.Equal(NotificationKind.Resolved, resolved.Notification.Kind);
        Assert.Equal(0, platform.State.ConsecutiveFailures);
    }

    /// <summary>Heartbeats with the default retry policy (a new problem is soft, confirmed at its third attempt), any group.</summary>
    private sealed class RetryingPlatform
    {
        public HeartbeatState State = HeartbeatState.Empty;
        public readonly List<AlertControl> Controls = new();

        public AlertPlan Beat(DateTimeOffset at, params (string Group, string Check)[] failing)
        {
            var groups = failing.GroupBy(f => f.Group).Select(g => new GroupReport(g.Key, CheckStatus.Fail,
                g.Select(f => new CheckResult(f.Check, CheckStatus.Fail, $"observed {f.Check}", "threshold", $"evidence of {f.Check}", 3)).ToList())).ToList();
            if (groups.Count == 0)
                groups.Add(new GroupReport(CheckGroups.TaskQueue, CheckStatus.Pass, new[] { new CheckResult("queue_depth", CheckStatus.Pass, "0 pending", "threshold", "", 1) }));
            var (report, states, _) = HeartbeatDecisions.DecideRound(State, HeartbeatDecisions.NextId(at, State.Latest?.Id), at, at.AddSeconds(1), groups, 3, false,
                RetryPolicy.Default, FlappingPolicy.Default);
            var plan = AlertDecisions.Plan(State.Incidents, report, Controls, at, Policy);
            State = State.Apply(new HeartbeatRecorded(report)).Apply(new CheckStatesObserved(states)).Apply(new IncidentsUpdated(plan.Incidents)).Apply(new NotificationsQueued(plan.Notifications));
            return plan;
        }
    }

    [Fact]
    public void A_problem_confirmed_during_an_escalated_streak_is_told_to_super_admin_then_not_at_the_next_reminder()
    {
        var platform = new RetryingPlatform();
        var queue = (CheckGroups.TaskQueue, "queue_depth");
        var database = (CheckGroups.SystemHealth, "database_connection");
        var stuck = (CheckGroups.TaskQueue, "stuck_tasks");
        var minute = 0;
        AlertPlan Beat(params (string, string)[] failing) => platform.Beat(T0.AddMinutes(minute++), failing);

        Assert.Empty(Beat(queue).Notifications);
        Assert.Empty(Beat(queue).Notifications);
        var escalation = Assert.Single(Beat(queue).Notifications).Notification;
        Assert.Equal(new[] { HeartbeatDecisions.ConsecutiveFailuresDedupKey }, escalation.DedupKeys);

        // The platform database goes down during the streak: nothing while it is soft (it may be a blip) ...
        Assert.Empty(Beat(queue, database).Notifications);
        Assert.Empty(Beat(queue, database).Notifications);
        // ... told when it is confirmed, on both channels, named in the title, with the streak's evidence.
        var update = Assert.Single(Beat(queue, database).Notifications);
        var told = update.Notification;
        Assert.Equal((NotificationKind.Firing, "super_admin"), (told.Kind, told.Audience));
        Assert.Equal(new[] { HeartbeatDecisions.ConsecutiveFailuresDedupKey }, told.DedupKeys);
        Assert.Equal(new[] { "discord", "email" }, update.PendingChannels.Order());
        Assert.Equal("6 consecutive failed heartbeats, newly confirmed: system_health/database_connection", told.Title);
        Assert.Contains("failing now: task_queue/queue_depth, system_health/database_connection", told.Summary);
        Assert.Contains(told.Lines, l => l.Check == "database_connection");
        Assert.Contains(told.Lines, l => l.Check == "queue_depth");
        // Once: the same problems raise nothing new.
        Assert.Empty(Beat(queue, database).Notifications);

        // An acknowledgement covers what super_admin knows; a problem confirmed after it is still told.
        platform.Controls.Add(new AlertControl(1, "ack", HeartbeatDecisions.ConsecutiveFailuresDedupKey, null, "dana", "on it", T0.AddMinutes(minute)));
        Assert.Empty(Beat(queue, database, stuck).Notifications);
        Assert.Empty(Beat(queue, database, stuck).Notifications);
        Assert.Contains("newly confirmed: task_queue/stuck_tasks", Assert.Single(Beat(queue, database, stuck).Notifications).Notification.Title);
        Assert.Empty(Beat(queue, database, stuck).Notifications);

        var resolved = Assert.Single(Beat().Notifications).Notification;
        Assert.Equal(NotificationKind.Resolved, resolved.Kind);
        Assert.Empty(platform.State.Incidents);
    }

    [Fact]
    public void An_escalation_written_before_it_kept_what_it_told_counts_what_its_summary_names_as_told()
    {
        // As persisted by the previous build: the lines grew with the streak (database_connection failed, soft, in a
        // heartbeat of it) but only queue_depth was ever named to super_admin.
        NotificationLine Line(string group, string check) => new(group, check, "fail", "o", "t", "d");
        var legacy = new Incident(HeartbeatDecisions.ConsecutiveFailuresDedupKey, "super_admin", new[] { "email", "discord" }, "critical",
            "3 consecutive failed heartbeats; failing now: task_queue/queue_depth",
            new[] { Line(CheckGroups.TaskQueue, "queue_depth"), Line(CheckGroups.SystemHealth, "database_connection") },
            T0, T0, false, false, null);
        var report = HeartbeatDecisions.Decide(HeartbeatState.Empty with { ConsecutiveFailures = 5 }, "heartbeat-x", T0.AddMinutes(5), T0.AddMinutes(5), new[]
        {
            new GroupReport(CheckGroups.TaskQueue, CheckStatus.Fail, new[] { new CheckResult("queue_depth", CheckStatus.Fail, "o", "t", "d", 1) }),
            new GroupReport(CheckGroups.SystemHealth, CheckStatus.Fail, new[] { new CheckResult("database_connection", CheckStatus.Fail, "o", "t", "d", 1) }),
        }, 100, false);
        var plan = AlertDecisions.Plan(ImmutableDictionary<string, Incident>.Empty.Add(legacy.DedupKey, legacy), report, Array.Empty<AlertControl>(), T0.AddMinutes(5), Policy);
        Assert.Equal("6 consecutive failed heartbeats, newly confirmed: system_health/database_connection", Assert.Single(plan.Notifications).Notification.Title);
        Assert.Equal(new[] { "system_health/database_connection", "task_queue/queue_depth" }, plan.Incidents[legacy.DedupKey].Told!.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_data_integrity_failure_during_an_escalated_streak_is_told_once_by_its_own_alert()
    {
        var platform = new RetryingPlatform();
        var queue = (CheckGroups.TaskQueue, "queue_depth");
        var books = (CheckGroups.DataIntegrity, "financial_totals_balance");
        for (var i = 0; i < 3; i++) platform.Beat(T0.AddMinutes(i), queue);
        var firing = Assert.Single(platform.Beat(T0.AddMinutes(3), queue, books).Notifications).Notification;
        Assert.Equal(new[] { HeartbeatDecisions.CheckDedupKey(books.Item1, books.Item2) }, firing.DedupKeys);
        Assert.Empty(platform.Beat(T0.AddMinutes(4), queue, books).Notifications);
    }

    [Fact]
    public void An_audience_without_a_configured_channel_is_recorded_not_queued()
    {
        var plan = AlertDecisions.Plan(ImmutableDictionary<string, Incident>.Empty,
            HeartbeatDecisions.Decide(HeartbeatState.Empty, "heartbeat-x", T0, T0, new[]
            {
                new GroupReport(CheckGroups.DataIntegrity, CheckStatus.Fail, new[] { new CheckResult("audit_log_continuous", CheckStatus.Fail, "o", "t", "d", 1) }),
            }, 3, false),
            Array.Empty<AlertControl>(), T0, AlertPolicy.Unrouted);
        Assert.Equal("recorded: no channel configured for super_admin", Assert.Single(plan.Alerts).Delivery);
        Assert.True(Assert.Single(plan.Notifications).PendingChannels.IsEmpty);
    }
}
