using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using Xunit;

namespace ClawKeeper.Actors.Tests.Heartbeat;

public class HeartbeatDecisionsSpec
{
    private static readonly DateTimeOffset Start = new(2026, 11, 28, 4, 0, 0, TimeSpan.Zero);

    internal static GroupReport Group(string group, params CheckStatus[] statuses) =>
        new(group, CheckStatusExtensions.Worst(statuses),
            statuses.Select((s, i) => new CheckResult($"check_{i}", s, "observed", "threshold", "detail", 1)).ToList());

    /// <summary>What the supervisor persists after a heartbeat: the record and the incidents it opened or closed.</summary>
    internal static HeartbeatState Step(HeartbeatState state, HeartbeatReport report)
    {
        var plan = ClawKeeper.Actors.Alerts.AlertDecisions.Plan(state.Incidents, report, Array.Empty<ClawKeeper.Platform.Alerts.AlertControl>(),
            report.CompletedAt, ClawKeeper.Actors.Alerts.AlertPolicy.Unrouted);
        return state.Apply(new HeartbeatRecorded(report)).Apply(new IncidentsUpdated(plan.Incidents));
    }

    private static HeartbeatReport Decide(HeartbeatState state, params GroupReport[] groups) =>
        HeartbeatDecisions.Decide(state, HeartbeatDecisions.NextId(Start, state.Latest?.Id), Start, Start.AddSeconds(2), groups, escalateAfterFailures: 3, dryRun: false);

    [Fact]
    public void Heartbeat_passes_when_checks_pass_warn_or_are_skipped()
    {
        var report = Decide(HeartbeatState.Empty, Group("system_health", CheckStatus.Pass, CheckStatus.Warn, CheckStatus.Skipped));
        Assert.Equal(HeartbeatStatus.Pass, report.Status);
        Assert.Equal(0, report.ConsecutiveFailures);
        Assert.Empty(report.Alerts);
    }

    [Theory]
    [InlineData(CheckStatus.Fail)]
    [InlineData(CheckStatus.Error)]
    public void A_failed_or_errored_check_fails_the_heartbeat(CheckStatus bad)
    {
        var report = Decide(HeartbeatState.Empty, Group("system_health", CheckStatus.Pass), Group("task_queue", CheckStatus.Pass, bad));
        Assert.Equal(HeartbeatStatus.Fail, report.Status);
        Assert.Equal(1, report.ConsecutiveFailures);
    }

    [Fact]
    public void A_heartbeat_with_no_group_is_a_failure_not_a_silent_pass()
    {
        var report = Decide(HeartbeatState.Empty);
        Assert.Equal(HeartbeatStatus.Fail, report.Status);
    }

    [Fact]
    public void Failures_count_up_escalate_once_at_the_threshold_and_reset_on_success()
    {
        var state = HeartbeatState.Empty;
        var reports = new List<HeartbeatReport>();
        for (var i = 0; i < 5; i++)
        {
            var report = Decide(state, Group("task_queue", CheckStatus.Fail));
            reports.Add(report);
            state = Step(state, report);
        }
        Assert.Equal(new[] { 1, 2, 3, 4, 5 }, reports.Select(r => r.ConsecutiveFailures));
        Assert.Equal(new[] { 0, 0, 1, 0, 0 }, reports.Select(r => r.Alerts.Count));
        var alert = reports[2].Alerts.Single();
        Assert.Equal("super_admin", alert.Audience);
        Assert.Equal(new[] { "email", "discord" }, alert.Channels);
        Assert.Contains("task_queue/check_0", alert.Summary);
        Assert.True(state.EscalationRaised);

        var recovered = Decide(state, Group("task_queue", CheckStatus.Pass));
        state = Step(state, recovered);
        Assert.Equal(0, state.ConsecutiveFailures);
        Assert.False(state.EscalationRaised);

        // A new streak escalates again.
        for (var i = 0; i < 3; i++) state = Step(state, Decide(state, Group("task_queue", CheckStatus.Fail)));
        Assert.True(state.EscalationRaised);
        Assert.Equal(3, state.ConsecutiveFailures);
    }

    [Fact]
    public void Ids_follow_the_contract_and_never_repeat_within_a_second()
    {
        var first = HeartbeatDecisions.NextId(Start, null);
        Assert.Equal("heartbeat-2026-11-28T04:00:00Z", first);
        var second = HeartbeatDecisions.NextId(Start.AddMilliseconds(250), first);
        Assert.Equal("heartbeat-2026-11-28T04:00:00.250Z", second);
        // A third in the same second is not the first one's id again (agent_runs would keep only one of them).
        var third = HeartbeatDecisions.NextId(Start.AddMilliseconds(600), second);
        Assert.Equal("heartbeat-2026-11-28T04:00:00.600Z", third);
        Assert.NotEqual(second, HeartbeatDecisions.NextId(Start.AddMilliseconds(250), second));
        Assert.Equal("heartbeat-2026-11-28T04:00:01Z", HeartbeatDecisions.NextId(Start.AddSeconds(1), third));
    }

    [Fact]
    public void Unlogged_runs_are_kept_until_logged_and_bounded()
    {
        var state = HeartbeatState.Empty;
        var report = Decide(state, Group("task_queue", CheckStatus.Pass));
        state = state.Apply(new HeartbeatRecorded(report));
        Assert.Single(state.UnloggedRuns);
        state = state.Apply(new HeartbeatRunLogged(report.Id));
        Assert.Empty(state.UnloggedRuns);

        for (var i = 0; i < HeartbeatState.MaxUnloggedRuns + 10; i++)
            state = state.Apply(new HeartbeatRecorded(report with { Id = $"heartbeat-{i}" }));
        Assert.Equal(HeartbeatState.MaxUnloggedRuns, state.UnloggedRuns.Count);
        Assert.Equal("heartbeat-10", state.UnloggedRuns[0].Id);
    }
}
