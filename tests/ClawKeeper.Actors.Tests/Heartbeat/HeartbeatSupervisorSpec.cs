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

/// <summary>The supervisor in virtual time (TestScheduler) with an in-memory journal.</summary>
public class HeartbeatSupervisorSpec : Akka.TestKit.Xunit2.TestKit
{
    private const string Config = """
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        akka.logger-formatter = "Akka.Logger.Serilog.SerilogLogMessageFormatter, Akka.Logger.Serilog"
        """;

    private static readonly HeartbeatSettings Settings = new(
        Interval: TimeSpan.FromHours(4),
        InitialDelay: TimeSpan.FromSeconds(15),
        GroupTimeout: TimeSpan.FromSeconds(30),
        EscalateAfterFailures: 3,
        SnapshotEvery: 2,
        Retry: RetryPolicy.Immediate); // every failure hard at once here; soft states: HeartbeatRetrySpec

    private readonly RecordingRunLog _runLog = new();
    private readonly TestProbe _completed;

    public HeartbeatSupervisorSpec(ITestOutputHelper output) : base(Config, output)
    {
        _completed = CreateTestProbe();
        Sys.EventStream.Subscribe(_completed, typeof(HeartbeatCompleted));
    }

    private TestScheduler Scheduler => (TestScheduler)Sys.Scheduler;

    private IActorRef StartSupervisor(string persistenceId, params CheckGroupDefinition[] groups) =>
        StartSupervisor(persistenceId, scheduled: true, groups);

    private IActorRef StartSupervisor(string persistenceId, bool scheduled, params CheckGroupDefinition[] groups)
    {
        var options = new HeartbeatSupervisorOptions(persistenceId, Settings, groups,
            new[] { new OrchestratorDefinition("cfo", 8) }, _runLog, Scheduled: scheduled);
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(options));
        // Commands wait for recovery: once this answers, the timers are running.
        supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault).Wait();
        return supervisor;
    }

    private HeartbeatReport NextReport() => _completed.ExpectMsg<HeartbeatCompleted>().Report;

    [Fact]
    public void Ticks_first_after_the_initial_delay_then_at_the_interval()
    {
        var status = CheckStatus.Pass;
        StartSupervisor("tick", TestGroups.Scripted("system_health", () => status), TestGroups.Scripted("task_queue", () => status));

        Scheduler.Advance(Settings.InitialDelay - TimeSpan.FromSeconds(1));
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Scheduler.Advance(TimeSpan.FromSeconds(1));
        var first = NextReport();
        Assert.Equal(HeartbeatStatus.Pass, first.Status);
        Assert.Equal(new[] { "system_health", "task_queue" }, first.Groups.Select(g => g.Group));

        Scheduler.Advance(Settings.Interval - TimeSpan.FromMinutes(1));
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Scheduler.Advance(TimeSpan.FromMinutes(1));
        var second = NextReport();
        Assert.NotEqual(first.Id, second.Id);
        AwaitCondition(() => _runLog.Written.Count == 2);
        Assert.All(_runLog.Written, r => Assert.StartsWith("heartbeat-", r.Id));
    }

    [Fact]
    public void A_group_that_never_answers_fails_the_heartbeat_at_the_deadline()
    {
        var asked = CreateTestProbe();
        StartSupervisor("deadline", TestGroups.Scripted("system_health", () => CheckStatus.Pass), TestGroups.Silent("task_queue", asked));

        Scheduler.Advance(Settings.InitialDelay);
        asked.ExpectMsg<RunCheckGroup>();
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        Scheduler.Advance(Settings.GroupTimeout - TimeSpan.FromSeconds(1));
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Scheduler.Advance(TimeSpan.FromSeconds(1));

        var report = NextReport();
        Assert.Equal(HeartbeatStatus.Fail, report.Status);
        var silent = report.Groups.Single(g => g.Group == "task_queue");
        Assert.Equal(CheckStatus.Error, silent.Status);
        Assert.Equal(new[] { "task_queue_a", "task_queue_b" }, silent.Checks.Select(c => c.Check));
        Assert.Equal(CheckStatus.Pass, report.Groups.Single(g => g.Group == "system_health").Status);
    }

    [Fact]
    public void Overlapping_requests_share_one_heartbeat()
    {
        var asked = CreateTestProbe();
        var supervisor = StartSupervisor("overlap", TestGroups.Silent("task_queue", asked));

        supervisor.Tell(RunHeartbeatNow.Instance, TestActor);
        asked.ExpectMsg<RunCheckGroup>();
        supervisor.Tell(RunHeartbeatNow.Instance, TestActor);
        Scheduler.Advance(Settings.InitialDelay); // the timer's tick arrives while the heartbeat runs
        asked.ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        Scheduler.Advance(Settings.GroupTimeout);
        var one = ExpectMsg<HeartbeatCompleted>();
        var two = ExpectMsg<HeartbeatCompleted>();
        Assert.Equal(one.Report.Id, two.Report.Id);
        NextReport();
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task Consecutive_failures_count_up_reset_on_success_and_survive_a_restart()
    {
        var status = CheckStatus.Fail;
        var groups = new[] { TestGroups.Scripted("task_queue", () => status) };
        var supervisor = StartSupervisor("restart", groups);

        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        Assert.Equal(1, NextReport().ConsecutiveFailures);
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        Assert.Equal(2, NextReport().ConsecutiveFailures);

        Watch(supervisor);
        Sys.Stop(supervisor);
        ExpectTerminated(supervisor);

        var restarted = StartSupervisor("restart", groups);
        var recovered = await restarted.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);
        Assert.Equal(2, recovered.ConsecutiveFailures);
        Assert.Equal(2, recovered.HeartbeatsRecorded);

        restarted.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var third = NextReport();
        Assert.Equal(3, third.ConsecutiveFailures);
        Assert.Equal("super_admin", Assert.Single(third.Alerts).Audience);

        restarted.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var fourth = NextReport();
        Assert.Equal(4, fourth.ConsecutiveFailures);
        Assert.Empty(fourth.Alerts); // escalated once per streak

        status = CheckStatus.Pass;
        restarted.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var passed = NextReport();
        Assert.Equal(HeartbeatStatus.Pass, passed.Status);
        Assert.Equal(0, passed.ConsecutiveFailures);
    }

    [Fact]
    public void Heartbeat_rows_wait_for_the_database_and_are_written_once_it_returns()
    {
        _runLog.Down = true;
        var supervisor = StartSupervisor("runlog", scheduled: false, TestGroups.Scripted("task_queue", () => CheckStatus.Pass));
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var report = NextReport();

        AwaitAssert(() =>
        {
            var state = supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault).Result;
            Assert.Equal(report.Id, Assert.Single(state.UnloggedRuns).Id);
        });
        Assert.Empty(_runLog.Written);

        _runLog.Down = false;
        // The retry timer starts once the failed write is seen; keep virtual time moving until it fires.
        AwaitCondition(() =>
        {
            Scheduler.Advance(TimeSpan.FromSeconds(30));
            return _runLog.Written.Count == 1;
        });
        Assert.Equal(report.Id, _runLog.Written.Single().Id);
        AwaitAssert(() => Assert.Empty(supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault).Result.UnloggedRuns));
    }

    [Fact]
    public async Task A_dry_run_persists_nothing_and_writes_no_row()
    {
        var options = new HeartbeatSupervisorOptions("dry", Settings, new[] { TestGroups.Scripted("task_queue", () => CheckStatus.Fail) },
            Array.Empty<OrchestratorDefinition>(), _runLog, Scheduled: false, DryRun: true);
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(options));
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var report = NextReport();
        Assert.True(report.DryRun);
        Assert.Equal(1, report.ConsecutiveFailures);
        var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);
        Assert.Equal(0, state.HeartbeatsRecorded);
        Assert.Empty(_runLog.Written);
    }

    [Fact]
    public async Task A_write_block_held_during_a_database_outage_is_applied_when_the_database_returns_without_waiting_for_a_heartbeat()
    {
        var guard = new ScriptedWriteBlockGuard { Down = true };
        var options = new HeartbeatSupervisorOptions("held-block", Settings,
            new[] { TestGroups.Scripted("data_integrity", () => CheckStatus.Fail) },
            Array.Empty<OrchestratorDefinition>(), _runLog, Scheduled: false, WriteBlocks: guard);
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(options));
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var report = NextReport();
        Assert.True(report.WriteBlock.Active);
        Assert.Null(report.WriteBlock.BlockId);

        guard.Down = false;
        await AwaitAssertAsync(async () =>
        {
            Scheduler.Advance(TimeSpan.FromSeconds(15));
            var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);
            Assert.Equal(1L, state.WriteBlock.BlockId);
        });
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // no heartbeat was needed for it
    }

    [Fact]
    public void Repeated_orchestrator_crashes_alert_super_admin_at_once_without_waiting_for_the_interval()
    {
        var supervisor = StartSupervisor("escalation", scheduled: true, TestGroups.Scripted("system_health", () => CheckStatus.Pass));
        supervisor.Tell(new OrchestratorEscalation("reconciliation-lead", 5, TimeSpan.FromMinutes(1), "InvalidOperationException: ledger lock lost", TimeSpan.FromSeconds(8)));

        var report = NextReport(); // no tick was due: the escalation started the round
        var alert = Assert.Single(report.Alerts);
        Assert.Equal("super_admin", alert.Audience);
        Assert.Equal(HeartbeatDecisions.CheckDedupKey("system_health", "orchestrators_reachable"), alert.DedupKey);
        Assert.Contains("reconciliation-lead crashed 5 times within 60 s (last: InvalidOperationException: ledger lock lost)", alert.Summary);
        Assert.Contains(report.Actions, a => a.Action == "restart_orchestrator" && a.Detail.StartsWith("reconciliation-lead: 5 crashes", StringComparison.Ordinal));
    }
}
