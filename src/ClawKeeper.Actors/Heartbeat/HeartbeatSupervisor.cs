using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>How a supervisor is set up; the host builds one per mode (node or one-shot check).</summary>
public sealed record HeartbeatSupervisorOptions(
    string PersistenceId,
    HeartbeatSettings Heartbeat,
    IReadOnlyList<CheckGroupDefinition> Groups,
    IReadOnlyList<OrchestratorDefinition> Orchestrators,
    IHeartbeatRunLog RunLog,
    bool Scheduled = true,
    bool DryRun = false)
{
    public const string NodePersistenceId = "clawkeeper-heartbeat";
    public const string CliPersistenceId = "clawkeeper-heartbeat-cli";
}

/// <summary>
/// The heartbeat: ticks on a timer, fans a tick out to the check groups, gathers their results
/// against a deadline, decides the outcome (pure, <see cref="HeartbeatDecisions"/>), persists it,
/// logs the run in <c>agent_runs</c> and escalates. Never two heartbeats at once.
/// </summary>
public sealed class HeartbeatSupervisor : ReceivePersistentActor, IWithTimers
{
    private const string TickTimer = "heartbeat-tick";
    private const string DeadlineTimer = "round-deadline";
    private const string RunLogRetryTimer = "run-log-retry";
    private static readonly TimeSpan RunLogRetryInterval = TimeSpan.FromSeconds(30);

    private readonly HeartbeatSupervisorOptions _options;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<IActorRef> _waiters = new();
    private HeartbeatState _state = HeartbeatState.Empty;
    private HeartbeatRound? _round;
    private IActorRef _checks = ActorRefs.Nobody;
    private bool _runLogInFlight;

    public HeartbeatSupervisor(HeartbeatSupervisorOptions options)
    {
        _options = options;
        PersistenceId = options.PersistenceId;

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is HeartbeatState snapshot) _state = snapshot;
        });
        Recover<IHeartbeatEvent>(e => _state = _state.Apply(e));

        Command<HeartbeatTick>(_ =>
        {
            if (_round is not null)
            {
                _log.Warning("Heartbeat tick skipped: {HeartbeatId} is still running", _round.Id);
                return;
            }
            StartRound(_options.DryRun);
        });
        Command<RunHeartbeatNow>(_ =>
        {
            _waiters.Add(Sender);
            if (_round is null) StartRound(_options.DryRun);
        });
        Command<GroupResult>(result =>
        {
            if (_round is null) return;
            _round = _round.With(result);
            if (_round.IsComplete) FinishRound();
        });
        Command<RoundDeadline>(deadline =>
        {
            if (_round is null || _round.Id != deadline.HeartbeatId) return;
            var missing = _round.Expected.Where(g => !_round.Received.ContainsKey(g.Group)).Select(g => g.Group);
            _log.Warning("Heartbeat {HeartbeatId}: no answer from {MissingGroups} within {GroupTimeout}", _round.Id, string.Join(", ", missing), _options.Heartbeat.GroupTimeout);
            FinishRound();
        });
        Command<RunLogsWritten>(OnRunLogsWritten);
        Command<RetryRunLogs>(_ => WriteUnloggedRuns());
        Command<GetHeartbeatState>(_ => Sender.Tell(_state));
        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(f => _log.Warning("Heartbeat snapshot failed: {Reason}", f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => _log.Warning("Deleting old heartbeat snapshots failed: {Reason}", f.Cause.Message));
    }

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(HeartbeatSupervisorOptions options) => Akka.Actor.Props.Create(() => new HeartbeatSupervisor(options));

    protected override void PreStart()
    {
        var orchestrators = Context.ActorOf(OrchestratorFleetActor.Props(_options.Orchestrators), "orchestrators");
        _checks = Context.ActorOf(CheckGroupsActor.Props(_options.Groups, new CheckGroupEnvironment(orchestrators)), "checks");
        base.PreStart();
    }

    protected override void OnReplaySuccess()
    {
        _log.Info("Heartbeat supervisor recovered: {HeartbeatsRecorded} heartbeats recorded, {ConsecutiveFailures} consecutive failures, {UnloggedRuns} runs waiting for agent_runs",
            _state.HeartbeatsRecorded, _state.ConsecutiveFailures, _state.UnloggedRuns.Count);
        if (_options.Scheduled)
            Timers.StartPeriodicTimer(TickTimer, HeartbeatTick.Instance, _options.Heartbeat.InitialDelay, _options.Heartbeat.Interval);
        if (!_options.DryRun && _state.UnloggedRuns.Count > 0)
            Self.Tell(RetryRunLogs.Instance);
    }

    private void StartRound(bool dryRun)
    {
        var now = Context.System.Scheduler.Now;
        var id = HeartbeatDecisions.NextId(now, _state.Latest?.Id);
        var expected = _options.Groups.Select(g => new ExpectedGroup(g.Group, g.CheckIds)).ToList();
        _round = HeartbeatRound.Start(id, now, expected, dryRun);
        _log.Info("Heartbeat {HeartbeatId} started: {GroupCount} groups", id, expected.Count);
        if (expected.Count == 0)
        {
            FinishRound();
            return;
        }
        Timers.StartSingleTimer(DeadlineTimer, new RoundDeadline(id), _options.Heartbeat.GroupTimeout);
        _checks.Tell(new RunCheckGroup(new CheckContext(id, now, _state.LastCompletedAt)));
    }

    private void FinishRound()
    {
        var round = _round!;
        _round = null;
        Timers.Cancel(DeadlineTimer);
        var groups = round.Close(_options.Heartbeat.GroupTimeout);
        var report = HeartbeatDecisions.Decide(_state, round.Id, round.StartedAt, Context.System.Scheduler.Now, groups,
            _options.Heartbeat.EscalateAfterFailures, round.DryRun);

        if (round.DryRun)
        {
            Completed(report);
            return;
        }
        Persist(new HeartbeatRecorded(report), recorded =>
        {
            _state = _state.Apply(recorded);
            if (_state.HeartbeatsRecorded % _options.Heartbeat.SnapshotEvery == 0) SaveSnapshot(_state);
            Completed(recorded.Report);
            WriteUnloggedRuns();
        });
    }

    private void Completed(HeartbeatReport report)
    {
        HeartbeatLog.Write(_log, report);
        var completed = new HeartbeatCompleted(report);
        foreach (var waiter in _waiters) waiter.Tell(completed);
        _waiters.Clear();
        Context.System.EventStream.Publish(completed);
    }

    private void WriteUnloggedRuns()
    {
        if (_runLogInFlight || _state.UnloggedRuns.Count == 0) return;
        _runLogInFlight = true;
        var pending = _state.UnloggedRuns.ToList();
        _options.RunLog.RecordAsync(pending, CancellationToken.None).PipeTo(Self,
            success: written => new RunLogsWritten(written, null),
            failure: ex => new RunLogsWritten(Array.Empty<string>(), ex.GetBaseException().Message));
    }

    private void OnRunLogsWritten(RunLogsWritten result)
    {
        _runLogInFlight = false;
        if (result.Error is not null)
        {
            _log.Warning("Heartbeat runs not yet in agent_runs ({UnloggedRuns} waiting), retrying in {RetryInterval}: {Reason}",
                _state.UnloggedRuns.Count, RunLogRetryInterval, result.Error);
            Timers.StartSingleTimer(RunLogRetryTimer, RetryRunLogs.Instance, RunLogRetryInterval);
        }
        if (result.Written.Count > 0)
            PersistAll(result.Written.Select(id => new HeartbeatRunLogged(id)), logged => _state = _state.Apply(logged));
    }
}
