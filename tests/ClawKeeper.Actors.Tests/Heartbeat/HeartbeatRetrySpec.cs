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

/// <summary>Retry rounds of the supervisor (soft → hard), in virtual time with an in-memory journal.</summary>
public class HeartbeatRetrySpec : Akka.TestKit.Xunit2.TestKit
{
    private const string Config = """
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        """;

    private static readonly HeartbeatSettings Settings = new(
        Interval: TimeSpan.FromHours(4),
        InitialDelay: TimeSpan.FromHours(1),
        GroupTimeout: TimeSpan.FromSeconds(30),
        EscalateAfterFailures: 2,
        SnapshotEvery: 3,
        Retry: new RetryPolicy(TimeSpan.FromMinutes(1), 3));

    private readonly RecordingRunLog _runLog = new();
    private readonly TestProbe _completed;
    private readonly TestProbe _healthAsked;
    private readonly TestProbe _queueAsked;
    private volatile CheckStatus _queue = CheckStatus.Fail;

    public HeartbeatRetrySpec(ITestOutputHelper output) : base(Config, output)
    {
        _completed = CreateTestProbe();
        _healthAsked = CreateTestProbe();
        _queueAsked = CreateTestProbe();
        Sys.EventStream.Subscribe(_completed, typeof(HeartbeatCompleted));
    }

    private TestScheduler Scheduler => (TestScheduler)Sys.Scheduler;

    private IActorRef StartSupervisor(string persistenceId)
    {
        var options = new HeartbeatSupervisorOptions(persistenceId, Settings,
            new[]
            {
                TestGroups.Scripted("system_health", () => CheckStatus.Pass, _healthAsked),
                TestGroups.Scripted("task_queue", () => _queue, _queueAsked),
            },
            new[] { new OrchestratorDefinition("cfo", 2) }, _runLog);
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(options));
        supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault).Wait();
        return supervisor;
    }

    private HeartbeatReport NextReport() => _completed.ExpectMsg<HeartbeatCompleted>().Report;

    private static CheckResult QueueCheck(HeartbeatReport report) => report.Groups.Single(g => g.Group == "task_queue").Checks.Single();

    [Fact]
    public void A_failing_check_is_re_run_alone_at_the_retry_cadence_until_it_is_hard_each_round_counted_and_then_retries_stop()
    {
        var supervisor = StartSupervisor("retry");
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var first = NextReport();
        Assert.Equal(("soft", "1/3"), (QueueCheck(first).State, QueueCheck(first).Attempt));
        Assert.Equal(HeartbeatStatus.Fail, first.Status);
        Assert.Equal(1, first.ConsecutiveFailures); // a failed heartbeat, soft or not (was 0)
        Assert.Null(_healthAsked.ExpectMsg<RunCheckGroup>().Only);
        _queueAsked.ExpectMsg<RunCheckGroup>();

        Scheduler.Advance(Settings.RetryPolicy.Interval);
        var retry = _queueAsked.ExpectMsg<RunCheckGroup>();
        Assert.Equal(new[] { "task_queue/task_queue_check" }, retry.Only!);
        Assert.False(retry.Context.FullVerification); // a retry never re-runs the full integrity verification
        _healthAsked.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // the passing group is not asked again
        var second = NextReport();
        Assert.Equal(("soft", "2/3"), (QueueCheck(second).State, QueueCheck(second).Attempt));
        Assert.Equal(first.Id, second.Groups.Single(g => g.Group == "system_health").Checks.Single().CarriedFrom);
        Assert.Equal(new[] { "task_queue/task_queue_check" }, second.Rechecked);
        Assert.Equal(2, second.ConsecutiveFailures); // the retry round is a heartbeat (was 0)...
        Assert.Contains(second.Alerts, a => a.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey); // ...and escalates at 2 here

        Scheduler.Advance(Settings.RetryPolicy.Interval);
        var third = NextReport();
        Assert.Equal(("hard", "3/3"), (QueueCheck(third).State, QueueCheck(third).Attempt));
        Assert.Equal(3, third.ConsecutiveFailures); // was 1: once per cycle
        Assert.Empty(third.Alerts); // once per streak

        Scheduler.Advance(Settings.RetryPolicy.Interval * 3);
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // hard: no more retries until the next heartbeat
        AwaitCondition(() => _runLog.Written.Count == 3); // each round is a heartbeat row
    }

    [Fact]
    public void A_check_that_recovers_on_a_retry_is_reset_without_a_count()
    {
        var supervisor = StartSupervisor("recovers");
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        Assert.Equal("soft", QueueCheck(NextReport()).State);

        _queue = CheckStatus.Pass;
        Scheduler.Advance(Settings.RetryPolicy.Interval);
        var recovered = NextReport();
        Assert.Equal(HeartbeatStatus.Pass, recovered.Status);
        Assert.Equal(0, recovered.ConsecutiveFailures);
        Assert.Empty(recovered.Alerts);
        Scheduler.Advance(Settings.RetryPolicy.Interval * 2);
        _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task A_soft_state_survives_a_restart_of_the_supervisor_and_its_retry_resumes()
    {
        var supervisor = StartSupervisor("survives");
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        NextReport();
        Scheduler.Advance(Settings.RetryPolicy.Interval);
        Assert.Equal("2/3", QueueCheck(NextReport()).Attempt);

        Watch(supervisor);
        Sys.Stop(supervisor);
        ExpectTerminated(supervisor);

        var restarted = StartSupervisor("survives");
        var recovered = await restarted.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);
        var state = recovered.Checks.Checks["task_queue/task_queue_check"];
        Assert.Equal((2, false), (state.Attempt, state.Hard));
        Assert.Equal("11", state.History[^2..]);

        Scheduler.Advance(Settings.RetryPolicy.Interval); // the retry timer is started again on recovery
        var third = NextReport();
        Assert.Equal(("hard", "3/3"), (QueueCheck(third).State, QueueCheck(third).Attempt));
        Assert.Equal(3, third.ConsecutiveFailures); // the count survives the restart too (was 1: only hard problems counted)
    }

    [Fact]
    public async Task A_request_or_a_tick_during_a_retry_round_gets_a_full_heartbeat_right_after_it()
    {
        var asked = CreateTestProbe();
        // Answers full rounds (failing), never a retry: the retry round stays open until its deadline.
        var group = new CheckGroupDefinition("task_queue", new[] { "task_queue_check" }, _ => Props.Create(() => new FullRoundsOnly(asked)));
        // The tick (at 2 min) falls inside the retry round (1 min .. its 5 min deadline).
        var settings = Settings with { InitialDelay = TimeSpan.FromMinutes(2), GroupTimeout = TimeSpan.FromMinutes(5) };
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(new HeartbeatSupervisorOptions("pending", settings, new[] { group },
            Array.Empty<OrchestratorDefinition>(), _runLog)));
        await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);

        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        Assert.Null(asked.ExpectMsg<RunCheckGroup>().Only);
        Assert.Equal("soft", QueueCheck(NextReport()).State);

        Scheduler.Advance(Settings.RetryPolicy.Interval);
        Assert.NotNull(asked.ExpectMsg<RunCheckGroup>().Only); // the retry round is open
        supervisor.Tell(RunHeartbeatNow.Instance, TestActor);
        Scheduler.Advance(TimeSpan.FromMinutes(1)); // and the scheduled tick arrives during it
        asked.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        Scheduler.Advance(settings.GroupTimeout);
        var retry = NextReport();
        Assert.NotNull(retry.Rechecked);
        Assert.Null(asked.ExpectMsg<RunCheckGroup>().Only); // the full round follows at once
        var full = ExpectMsg<HeartbeatCompleted>().Report; // the requester gets the full heartbeat, not the retry
        Assert.Null(full.Rechecked);
        Assert.Equal(full.Id, NextReport().Id);
        Assert.Equal(("hard", "3/3"), (QueueCheck(full).State, QueueCheck(full).Attempt));
        asked.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // one full round for both the request and the tick
    }

    private sealed class FullRoundsOnly : ReceiveActor
    {
        public FullRoundsOnly(IActorRef observer) =>
            Receive<RunCheckGroup>(run =>
            {
                observer.Tell(run);
                if (run.Only is null)
                    Sender.Tell(new GroupResult("task_queue", run.Context.HeartbeatId,
                        new[] { new CheckResult("task_queue_check", CheckStatus.Fail, "scripted", "scripted", "scripted", 1) }));
            });
    }

    [Fact]
    public async Task A_data_integrity_fail_blocks_writes_and_alerts_super_admin_in_the_first_round_without_retries()
    {
        var guard = new ScriptedWriteBlockGuard();
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(new HeartbeatSupervisorOptions("integrity", Settings,
            new[] { TestGroups.Scripted("data_integrity", () => CheckStatus.Fail, _queueAsked) },
            Array.Empty<OrchestratorDefinition>(), _runLog, WriteBlocks: guard)));
        await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, RemainingOrDefault);

        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        var report = NextReport();
        var check = report.Groups.Single().Checks.Single();
        Assert.Equal(("hard", "1/3"), (check.State, check.Attempt));
        Assert.True(report.WriteBlock.Active);
        Assert.Equal(1L, report.WriteBlock.BlockId);
        var alert = Assert.Single(report.Alerts);
        Assert.Equal(("super_admin", HeartbeatDecisions.CheckDedupKey("data_integrity", "data_integrity_check")), (alert.Audience, alert.DedupKey));
        Assert.Equal(1, report.ConsecutiveFailures);

        _queueAsked.ExpectMsg<RunCheckGroup>();
        Scheduler.Advance(Settings.RetryPolicy.Interval * 3);
        _queueAsked.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // no retry round: an incremental re-check cannot clear it
    }
}
