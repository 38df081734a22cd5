using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using Xunit;

namespace ClawKeeper.Actors.Tests.Heartbeat;

/// <summary>Soft/hard states, retries and flap detection, pure (no actors).</summary>
public class CheckStatesSpec
{
    private static readonly DateTimeOffset Start = new(2026, 11, 28, 4, 0, 0, TimeSpan.Zero);
    private static readonly RetryPolicy Retry = new(TimeSpan.FromMinutes(1), 3);
    private static readonly FlappingPolicy Flapping = FlappingPolicy.Default;

    private sealed class Monitor
    {
        public HeartbeatState State = HeartbeatState.Empty;
        private int _round;

        /// <summary>One round through the pure decisions and what the supervisor persists after it.</summary>
        public HeartbeatReport Round(bool retry, params GroupReport[] groups)
        {
            var at = Start.AddMinutes(_round++);
            var decision = HeartbeatDecisions.DecideRound(State, HeartbeatDecisions.NextId(at, State.Latest?.Id), at, at.AddSeconds(1), groups,
                escalateAfterFailures: 2, dryRun: false, CheckStatesSpec.Retry, Flapping, retry);
            var plan = ClawKeeper.Actors.Alerts.AlertDecisions.Plan(State.Incidents, decision.Report, Array.Empty<ClawKeeper.Platform.Alerts.AlertControl>(),
                decision.Report.CompletedAt, ClawKeeper.Actors.Alerts.AlertPolicy.Unrouted);
            State = State.Apply(new HeartbeatRecorded(decision.Report with { Alerts = plan.Alerts }))
                .Apply(new IncidentsUpdated(plan.Incidents))
                .Apply(new CheckStatesObserved(decision.States));
            return decision.Report with { Alerts = plan.Alerts };
        }

        public HeartbeatReport Full(params GroupReport[] groups) => Round(false, groups);

        public HeartbeatReport Again(params GroupReport[] groups) => Round(true, groups);
    }

    private static GroupReport Group(string group, params (string Check, CheckStatus Status)[] checks) =>
        new(group, CheckStatusExtensions.Worst(checks.Select(c => c.Status)),
            checks.Select(c => new CheckResult(c.Check, c.Status, $"observed {c.Status}", "threshold", "detail", 1)).ToList());

    private static GroupReport Queue(CheckStatus depth, CheckStatus stuck = CheckStatus.Pass) =>
        Group("task_queue", ("queue_depth", depth), ("stuck_tasks", stuck));

    private static CheckResult Check(HeartbeatReport report, string group, string check) =>
        report.Groups.Single(g => g.Group == group).Checks.Single(c => c.Check == check);

    [Fact]
    public void A_problem_is_soft_for_the_first_attempts_then_hard_and_every_failed_round_counts_soft_or_hard()
    {
        var monitor = new Monitor();
        var first = monitor.Full(Queue(CheckStatus.Fail));
        var depth = Check(first, "task_queue", "queue_depth");
        Assert.Equal(("soft", "1/3", false), (depth.State, depth.Attempt, depth.Flapping!.Value));
        Assert.Equal(HeartbeatStatus.Fail, first.Status); // a soft problem fails the heartbeat...
        Assert.Equal(1, first.ConsecutiveFailures);        // ...and counts (the protocol's rule; was 0 before)
        Assert.Empty(first.Alerts);
        Assert.Equal(new[] { "task_queue/queue_depth" }, monitor.State.Checks.SoftChecks);
        Assert.Equal(("hard", "1/3"), (Check(first, "task_queue", "stuck_tasks").State, Check(first, "task_queue", "stuck_tasks").Attempt));

        var second = monitor.Again(Group("task_queue", ("queue_depth", CheckStatus.Fail)));
        Assert.Equal(("soft", "2/3"), (Check(second, "task_queue", "queue_depth").State, Check(second, "task_queue", "queue_depth").Attempt));
        Assert.Equal(first.Id, Check(second, "task_queue", "stuck_tasks").CarriedFrom); // not re-run, carried
        Assert.Null(Check(second, "task_queue", "queue_depth").CarriedFrom);
        Assert.Equal(new[] { "task_queue/queue_depth" }, second.Rechecked);
        Assert.Equal(2, second.ConsecutiveFailures); // a retry round is a heartbeat: it counts (was 0)
        // escalateAfterFailures is 2 here: the second failed heartbeat escalates, soft or not.
        Assert.Equal(HeartbeatDecisions.ConsecutiveFailuresDedupKey, Assert.Single(second.Alerts).DedupKey);

        var third = monitor.Again(Group("task_queue", ("queue_depth", CheckStatus.Fail)));
        Assert.Equal(("hard", "3/3"), (Check(third, "task_queue", "queue_depth").State, Check(third, "task_queue", "queue_depth").Attempt));
        Assert.Equal(3, third.ConsecutiveFailures); // every failed heartbeat counts (was 1: once per cycle)
        Assert.Empty(third.Alerts); // once per streak
        Assert.Empty(monitor.State.Checks.SoftChecks); // hard: back to the normal interval

        var next = monitor.Full(Queue(CheckStatus.Fail));
        Assert.Equal(("hard", "3/3"), (Check(next, "task_queue", "queue_depth").State, Check(next, "task_queue", "queue_depth").Attempt));
        Assert.Equal(4, next.ConsecutiveFailures);
        Assert.Empty(next.Alerts);
    }

    [Fact]
    public void Every_failed_round_counts_once_however_many_problems_it_confirms()
    {
        // Was: a retry round that confirms a second problem does not count the cycle twice (count 1, 1).
        // Now each round is a heartbeat and counts once, whatever it confirms.
        var monitor = new Monitor();
        Assert.Equal(1, monitor.Full(Queue(CheckStatus.Fail, CheckStatus.Fail)).ConsecutiveFailures);
        Assert.Equal(2, monitor.Again(Queue(CheckStatus.Fail, CheckStatus.Fail)).ConsecutiveFailures);
        var confirmed = monitor.Again(Queue(CheckStatus.Fail, CheckStatus.Fail));
        Assert.Equal(3, confirmed.ConsecutiveFailures);
        var again = monitor.Again(Queue(CheckStatus.Fail, CheckStatus.Fail)); // nothing soft any more, but say a retry ran anyway
        Assert.Equal(4, again.ConsecutiveFailures);
    }

    [Fact]
    public void A_check_that_recovers_while_soft_resets_the_count_without_an_alert()
    {
        var monitor = new Monitor();
        Assert.Equal(1, monitor.Full(Queue(CheckStatus.Error)).ConsecutiveFailures);
        Assert.Equal(2, monitor.Again(Group("task_queue", ("queue_depth", CheckStatus.Error))).ConsecutiveFailures);
        var recovered = monitor.Again(Group("task_queue", ("queue_depth", CheckStatus.Pass)));
        Assert.Equal(HeartbeatStatus.Pass, recovered.Status);
        Assert.Equal(0, recovered.ConsecutiveFailures);
        Assert.Empty(recovered.Alerts);
        Assert.Empty(monitor.State.Incidents);

        var again = monitor.Full(Queue(CheckStatus.Fail));
        Assert.Equal(("soft", "1/3"), (Check(again, "task_queue", "queue_depth").State, Check(again, "task_queue", "queue_depth").Attempt)); // starts over
    }

    [Fact]
    public void A_data_integrity_fail_is_hard_at_once_and_alerts_super_admin_at_once()
    {
        var monitor = new Monitor();
        var report = monitor.Full(Group("data_integrity", ("financial_totals_balance", CheckStatus.Fail), ("audit_log_continuous", CheckStatus.Error)));
        var balance = Check(report, "data_integrity", "financial_totals_balance");
        Assert.Equal(("hard", "1/3"), (balance.State, balance.Attempt));
        Assert.Equal(1, report.ConsecutiveFailures);
        var alert = Assert.Single(report.Alerts);
        Assert.Equal(("super_admin", HeartbeatDecisions.CheckDedupKey("data_integrity", "financial_totals_balance")), (alert.Audience, alert.DedupKey));
        // The write block is decided from the same round's results, not from the soft/hard state: immediate.
        Assert.Equal(new[] { "financial_totals_balance" }, HeartbeatDecisions.IntegrityFailureOf(report.Groups)!.Checks);
        // An integrity check that could not be evaluated is an ordinary soft problem (retried, incrementally).
        Assert.Equal("soft", Check(report, "data_integrity", "audit_log_continuous").State);
        Assert.Equal(new[] { "data_integrity/audit_log_continuous" }, monitor.State.Checks.SoftChecks);
    }

    [Fact]
    public void Max_attempts_one_makes_every_problem_hard_at_once()
    {
        var (states, observations) = CheckStates.Empty.Observe(new[] { Queue(CheckStatus.Fail) }, false, Start, RetryPolicy.Immediate, Flapping);
        Assert.True(states.Checks["task_queue/queue_depth"].Hard);
        Assert.Equal(CheckTransition.BecameHard, observations.Single(o => o.Check == "queue_depth").Transition);
    }

    [Fact]
    public void Flap_ratio_weighs_recent_changes_more_and_a_short_history_cannot_look_like_flapping()
    {
        Assert.Equal(0, CheckStates.FlapRatio("0000000000", 20));
        Assert.Equal(1.0, CheckStates.FlapRatio("01010101010101010101", 20), 3);
        Assert.True(CheckStates.FlapRatio("010", 20) < 0.3); // two changes in three results: not yet flapping
        var oldChange = CheckStates.FlapRatio("01111111111111111111", 20);
        var newChange = CheckStates.FlapRatio("00000000000000000001", 20);
        Assert.True(newChange > oldChange, $"{newChange} > {oldChange}");
        Assert.Equal(0.8 / 19, oldChange, 4);
        Assert.Equal(1.2 / 19, newChange, 4);
    }

    [Fact]
    public void A_flipping_check_starts_flapping_above_high_with_one_notice_and_settles_below_low()
    {
        var monitor = new Monitor();
        var reports = new List<HeartbeatReport>();
        for (var i = 0; i < 12; i++)
            reports.Add(monitor.Full(Queue(i % 2 == 0 ? CheckStatus.Fail : CheckStatus.Pass)));
        var started = reports.FindIndex(r => Check(r, "task_queue", "queue_depth").Flapping == true);
        Assert.True(started > 0, "it starts flapping");
        Assert.True(monitor.State.Checks.Checks["task_queue/queue_depth"].FlapRatio > Flapping.High);
        var notices = reports.SelectMany(r => r.Alerts).Where(a => a.DedupKey.StartsWith("flapping:", StringComparison.Ordinal)).ToList();
        var notice = Assert.Single(notices); // one notice, not one per flip
        Assert.Equal(("admin", HeartbeatDecisions.FlappingDedupKey("task_queue", "queue_depth")), (notice.Audience, notice.DedupKey));
        Assert.Contains("task_queue/queue_depth is flapping", notice.Summary);
        Assert.Contains(notice.DedupKey, monitor.State.Incidents.Keys);

        // It stays flapping between the thresholds (hysteresis) and settles once below low.
        var settled = -1;
        for (var i = 0; i < 25 && settled < 0; i++)
        {
            var report = monitor.Full(Queue(CheckStatus.Pass));
            var ratio = monitor.State.Checks.Checks["task_queue/queue_depth"].FlapRatio;
            if (Check(report, "task_queue", "queue_depth").Flapping == false)
            {
                settled = i;
                Assert.True(ratio < Flapping.Low, $"settled at {ratio}");
            }
            else
                Assert.True(ratio >= Flapping.Low, $"still flapping at {ratio}");
        }
        Assert.True(settled >= 0, "it settles");
        Assert.DoesNotContain(HeartbeatDecisions.FlappingDedupKey("task_queue", "queue_depth"), monitor.State.Incidents.Keys); // resolved
    }

    [Fact]
    public void Confirmed_problems_that_are_all_flapping_do_not_escalate_but_still_count()
    {
        var monitor = new Monitor();
        // Flip until flapping, with max-attempts 3 nothing is hard yet.
        for (var i = 0; i < 10; i++) monitor.Full(Queue(i % 2 == 0 ? CheckStatus.Fail : CheckStatus.Pass));
        Assert.True(monitor.State.Checks.Checks["task_queue/queue_depth"].Flapping);
        var streak = new List<HeartbeatReport> { monitor.Full(Queue(CheckStatus.Fail)), monitor.Again(Queue(CheckStatus.Fail)) };
        var hard = monitor.Again(Queue(CheckStatus.Fail));
        streak.Add(hard);
        Assert.Equal("hard", Check(hard, "task_queue", "queue_depth").State);
        Assert.True(Check(hard, "task_queue", "queue_depth").Flapping);
        var next = monitor.Full(Queue(CheckStatus.Fail));
        streak.Add(next);
        Assert.Equal(4, next.ConsecutiveFailures); // the count is state, kept (every failed round counts: was 2)
        Assert.DoesNotContain(streak.SelectMany(r => r.Alerts), a => a.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey); // the alert is held back
    }

    [Fact]
    public void A_full_round_forgets_checks_that_no_longer_exist_and_a_retry_round_keeps_the_others()
    {
        var (states, _) = CheckStates.Empty.Observe(new[] { Queue(CheckStatus.Fail, CheckStatus.Pass) }, false, Start, Retry, Flapping);
        var (retried, _) = states.Observe(new[] { Group("task_queue", ("queue_depth", CheckStatus.Fail)) }, true, Start, Retry, Flapping);
        Assert.Equal(2, retried.Checks.Count);
        Assert.Equal(2, retried.Checks["task_queue/queue_depth"].Attempt);
        var (full, _) = retried.Observe(new[] { Group("task_queue", ("queue_depth", CheckStatus.Fail)) }, false, Start, Retry, Flapping);
        Assert.Equal(new[] { "task_queue/queue_depth" }, full.Checks.Keys);
    }
}
