using Akka.Actor;
using Akka.TestKit;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Heartbeat;

/// <summary>The escalation rule through the supervisor, in virtual time, with the default retry policy (1 min, 3 attempts) and threshold 3.</summary>
public class HeartbeatEscalationSupervisorSpec : Akka.TestKit.Xunit2.TestKit
{
    private const string Config = """
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        """;

    private static readonly HeartbeatSettings Settings = new(
        Interval: TimeSpan.FromHours(4),
        InitialDelay: TimeSpan.FromSeconds(15),
        GroupTimeout: TimeSpan.FromSeconds(30),
        EscalateAfterFailures: 3,
        SnapshotEvery: 2,
        Retry: RetryPolicy.Default);

    private readonly RecordingRunLog _runLog = new();
    private readonly TestProbe _completed;
    private volatile string? _failing;

    public HeartbeatEscalationSupervisorSpec(ITestOutputHelper output) : base(Config, output)
    {
        _completed = CreateTestProbe();
        Sys.EventStream.Subscribe(_completed, typeof(HeartbeatCompleted));
    }

    private TestScheduler Scheduler => (TestScheduler)Sys.Scheduler;

    private IActorRef StartSupervisor(string persistenceId)
    {
        CheckStatus Status(string group) => _failing == group ? CheckStatus.Fail : CheckStatus.Pass;
        var options = new HeartbeatSupervisorOptions(persistenceId, Settings,
            new[]
            {
                TestGroups.Scripted("task_queue", () => Status("task_queue")),
                TestGroups.Scripted("security_posture", () => Status("security_posture")),
                TestGroups.Scripted("integration_health", () => Status("integration_health")),
            },
            new[] { new OrchestratorDefinition("cfo", 2) }, _runLog);
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(options));
        supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault).Wait();
        return supervisor;
    }

    private HeartbeatReport NextReport() => _completed.ExpectMsg<HeartbeatCompleted>().Report;

    private static bool IsEscalation(AlertReport alert) => alert.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey;

    [Fact]
    public async Task Rotating_failures_escalate_at_the_third_heartbeat_with_each_check_as_evidence()
    {
        var supervisor = StartSupervisor("rotating");
        var reports = new List<HeartbeatReport>();
        foreach (var group in new[] { "task_queue", "security_posture", "integration_health" })
        {
            _failing = group; // each heartbeat fails on another check; the one before passes again
            supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
            reports.Add(NextReport());
        }

        Assert.Equal(new[] { 1, 2, 3 }, reports.Select(r => r.ConsecutiveFailures));
        Assert.All(reports, r => Assert.Equal("soft", r.Problems().Single().Check.State)); // none confirmed: the count does not wait for that
        Assert.DoesNotContain(reports[0].Alerts.Concat(reports[1].Alerts), IsEscalation);
        var alert = Assert.Single(reports[2].Alerts, IsEscalation);
        Assert.Equal("super_admin", alert.Audience);
        Assert.Equal(new[] { "email", "discord" }, alert.Channels);

        var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);
        var incident = state.Incidents[HeartbeatDecisions.ConsecutiveFailuresDedupKey];
        Assert.Equal(new[] { "integration_health", "security_posture", "task_queue" }, incident.Lines.Select(l => l.Group).Order(StringComparer.Ordinal));
        Assert.Equal(3, state.HeartbeatsRecorded); // three heartbeats (three agent_runs rows: see CheckEscalationSpec on the real executable)

        _failing = null;
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var passed = NextReport();
        Assert.Equal((HeartbeatStatus.Pass, 0), (passed.Status, passed.ConsecutiveFailures));
        state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);
        Assert.False(state.EscalationRaised); // resolved
    }

    [Fact]
    public void A_persistent_failure_escalates_at_the_third_round_two_retry_intervals_after_it_was_first_seen()
    {
        _failing = "security_posture";
        StartSupervisor("persistent");
        Scheduler.Advance(Settings.InitialDelay);
        var first = NextReport();
        Assert.Equal((HeartbeatStatus.Fail, 1, "soft"), (first.Status, first.ConsecutiveFailures, first.Problems().Single().Check.State));
        Assert.DoesNotContain(first.Alerts, IsEscalation);

        Scheduler.Advance(Settings.RetryPolicy.Interval);
        var second = NextReport();
        Assert.NotNull(second.Rechecked);
        Assert.Equal(2, second.ConsecutiveFailures);
        Assert.DoesNotContain(second.Alerts, IsEscalation);

        Scheduler.Advance(Settings.RetryPolicy.Interval);
        var third = NextReport();
        Assert.NotNull(third.Rechecked);
        Assert.Equal(3, third.ConsecutiveFailures);
        Assert.Single(third.Alerts, IsEscalation);
        Assert.Equal(2 * Settings.RetryPolicy.Interval, third.StartedAt - first.StartedAt); // not the next 4-hourly cycle

        Scheduler.Advance(Settings.RetryPolicy.Interval * 3);
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // hard now: no more retries, and no second escalation
    }
}
