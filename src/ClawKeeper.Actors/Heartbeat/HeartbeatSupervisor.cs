using Akka.Actor;
using Akka.Event;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Heartbeat.Journal;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>When the data-integrity group re-verifies everything, and how long that may take.</summary>
public sealed record IntegrityCadence(TimeSpan FullVerificationEvery, TimeSpan FullVerificationTimeout, bool BlockWrites)
{
    public static readonly IntegrityCadence Default = new(TimeSpan.FromHours(24), TimeSpan.FromMinutes(15), true);
}

/// <summary>How a supervisor is set up; the host builds one per mode (node or one-shot check).</summary>
public sealed record HeartbeatSupervisorOptions(
    string PersistenceId,
    HeartbeatSettings Heartbeat,
    IReadOnlyList<CheckGroupDefinition> Groups,
    IReadOnlyList<OrchestratorDefinition> Orchestrators,
    IHeartbeatRunLog RunLog,
    bool Scheduled = true,
    bool DryRun = false,
    IWriteBlockGuard? WriteBlocks = null,
    IntegrityCadence? Integrity = null,
    AlertDelivery? Alerts = null,
    IAlertControlSource? AlertControls = null,
    Integrations.ProviderCircuitBreakers? Breakers = null,
    int EscalateOpenBreakerAfterAttempts = 3,
    OrchestratorFleetOptions? Fleet = null,
    Repairs.IApiServerControl? ApiServer = null,
    Repairs.RepairOptions? Repair = null,
    Props? OrchestratorsGateway = null,
    string? SpoolPath = null,
    string? JournalIdentity = null)
{
    public const string NodePersistenceId = "clawkeeper-heartbeat";
    public const string CliPersistenceId = "clawkeeper-heartbeat-cli";

    public IntegrityCadence IntegrityCadence => Integrity ?? IntegrityCadence.Default;

    public AlertDelivery AlertDelivery => Alerts ?? AlertDelivery.None;

    public Repairs.RepairOptions RepairOptions => Repair ?? Repairs.RepairOptions.Default;
}

/// <summary>
/// The heartbeat: ticks on a timer, fans a tick out to the check groups, gathers their results
/// against a deadline, decides the outcome (pure, <see cref="HeartbeatDecisions"/>), carries out
/// the write-block action, persists the outcome, logs the run in <c>agent_runs</c> and escalates.
/// Never two heartbeats at once.
/// <para>
/// Never silent: the state lives in memory here; the store is a child (<see cref="HeartbeatJournal"/>) and
/// a local durable spool (<see cref="HeartbeatSpool"/>). A journal that cannot be read or written stops
/// only the child: the supervisor keeps its cadence, keeps every batch in the spool, says in each report
/// that the journal is unreachable, delivers alerts from its in-memory outbox, and starts a new child with
/// backoff; once one recovers, the spooled batches go into the journal in one atomic write with a marker
/// (<see cref="SpoolReconciled"/>), so none is written twice.
/// </para>
/// </summary>
public sealed class HeartbeatSupervisor : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    private const string TickTimer = "heartbeat-tick";
    private const string DeadlineTimer = "round-deadline";
    private const string RunLogRetryTimer = "run-log-retry";
    private const string WriteBlockRetryTimer = "write-block-retry";
    private const string WriteBlockReconcileTimer = "write-block-reconcile";
    private const string ReprobeTimer = "breaker-reprobe";
    private const string RetryTimer = "soft-retry";
    private const string JournalRestartTimer = "journal-restart";
    private static readonly TimeSpan JournalRecoveryTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan JournalWriteTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan JournalMinBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan JournalMaxBackoff = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RunLogRetryInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan WriteBlockRetryInterval = TimeSpan.FromSeconds(15);

    private readonly HeartbeatSupervisorOptions _options;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<IActorRef> _waiters = new();
    private readonly List<IActorRef> _nextRoundWaiters = new();
    private bool _fullRoundPending;
    private HeartbeatState _state = HeartbeatState.Empty;
    private HeartbeatRound? _round;
    private bool _closing;
    private bool _fullVerificationRequested;
    private IActorRef _checks = ActorRefs.Nobody;
    private IActorRef _alerts = ActorRefs.Nobody;
    private Repairs.HeartbeatRepairs _repairs = null!;
    private bool _runLogInFlight;
    private readonly List<OrchestratorEscalation> _escalations = new();

    // The store: the journal child, the spool, the batches the journal has not confirmed.
    private IActorRef _journal = ActorRefs.Nobody;
    private int _journalIncarnation;
    private bool _journalUp;
    private int _journalFailures;
    private DateTimeOffset? _journalDownSince;
    private string? _journalProblem;
    private HeartbeatSpool? _spool;
    private long _memorySeq;
    private readonly List<SpooledBatch> _pending = new();
    private InFlight? _inFlight;

    private sealed record InFlight(long UpToSeq, HeartbeatState StateAfter, Action Then);
    private sealed record JournalRecoveryTimedOut(int Incarnation);
    private sealed record JournalWriteTimedOut(long UpToSeq);
    private sealed record RestartJournal
    {
        public static readonly RestartJournal Instance = new();
    }

    public HeartbeatSupervisor(HeartbeatSupervisorOptions options)
    {
        _options = options;
        PersistenceId = options.PersistenceId;
        Become(Recovering);
    }

    public IStash Stash { get; set; } = null!;

    /// <summary>Until the journal recovered (or could not within <see cref="JournalRecoveryTimeout"/>), commands wait.</summary>
    private void Recovering()
    {
        Receive<JournalRecovered>(recovered =>
        {
            if (Sender != _journal) return;
            OnJournalUp();
            var mark = SpoolMark(recovered);
            _state = recovered.State;
            if (SpoolDecisions.IsStale(_pending.Where(b => b.Seq > mark).ToList(), recovered.State) is { } newer)
            {
                // Another node ran heartbeats after these (the singleton moved): applying them would roll the state back.
                _log.Warning("Heartbeat spool {Spool}: {Batches} batches from an earlier time on this node are older than the journal's latest heartbeat ({Latest:u}); they are dropped, not replayed",
                    _spool?.Path, _pending.Count(b => b.Seq > mark), newer);
                var last = _pending.Max(b => b.Seq);
                _pending.Clear();
                SafeSpool(s => { s.DeleteUpTo(last); return true; });
            }
            // Batches of this node's spool the journal does not hold yet (the node stopped during an outage).
            foreach (var batch in _pending.Where(b => b.Seq > mark))
                _state = batch.Events.Aggregate(_state, (s, e) => s.Apply(e));
            // Already in the journal (the node stopped between the journal's write and the spool's trim): trim now.
            ForgetSpooledUpTo(mark);
            if (_pending.Count > 0)
                _log.Warning("Heartbeat journal recovered; {Batches} batches from the local spool are not in it yet: writing them now", _pending.Count);
            StartRunning();
            FlushPending();
        });
        Receive<Terminated>(t =>
        {
            if (t.ActorRef != _journal) return;
            StartDegraded("the journal could not be recovered");
        });
        Receive<JournalRecoveryTimedOut>(t =>
        {
            if (t.Incarnation != _journalIncarnation) return;
            // A journal still recovering is stopped: a new one is started with backoff (never two with one persistence id).
            Context.Unwatch(_journal);
            Context.Stop(_journal);
            StartDegraded($"the journal did not recover within {JournalRecoveryTimeout.TotalSeconds:0} s");
        });
        ReceiveAny(_ => Stash.Stash());
    }

    /// <summary>Starts from the spool's last state (or empty) when the journal cannot be read.</summary>
    private void StartDegraded(string problem)
    {
        OnJournalDown(problem);
        var spooled = SafeSpool(s => s.LastState());
        if (spooled is { } last)
        {
            _state = last.State;
            _log.Warning("Heartbeat supervisor started from the local spool ({Spool}, state of {StateAt:u}: {ConsecutiveFailures} consecutive failures, {Outbox} notifications in the outbox, {Batches} batches waiting for the journal) because {Problem}",
                _spool!.Path, last.WrittenAt, _state.ConsecutiveFailures, _state.Outbox.Count, _pending.Count, problem);
        }
        else
        {
            _log.Error("Heartbeat supervisor started with an EMPTY state because {Problem} and the local spool holds no state ({Spool}): consecutive failures count from 0 until the journal returns",
                problem, _spool?.Path ?? "no spool configured");
        }
        StartRunning();
    }

    private void StartRunning()
    {
        Become(Running);
        Started();
        Stash.UnstashAll();
    }

    /// <summary>A batch is on its way to the journal: everything else waits (as Akka.Persistence's PersistAll does).</summary>
    private void Persisting()
    {
        Receive<BatchPersisted>(persisted =>
        {
            if (Sender != _journal || _inFlight is null || persisted.UpToSeq != _inFlight.UpToSeq) return;
            var then = _inFlight.Then;
            _inFlight = null;
            OnJournalWritable();
            _pending.RemoveAll(b => b.Seq <= persisted.UpToSeq);
            SafeSpool(s => { s.DeleteUpTo(persisted.UpToSeq); return true; });
            // The journal is the truth (after a start from an empty state it holds more than memory did).
            _state = persisted.State;
            Become(Running);
            then();
            Stash.UnstashAll();
        });
        Receive<Terminated>(t =>
        {
            if (t.ActorRef != _journal) return;
            JournalLost("the journal failed to write");
        });
        Receive<JournalWriteTimedOut>(t =>
        {
            if (_inFlight is null || t.UpToSeq != _inFlight.UpToSeq) return;
            _log.Warning("Heartbeat journal did not confirm a write within {Timeout}: stopping it and keeping the batch in the local spool", JournalWriteTimeout);
            Context.Unwatch(_journal);
            Context.Stop(_journal);
            JournalLost($"the journal did not confirm a write within {JournalWriteTimeout.TotalSeconds:0} s");
        });
        ReceiveAny(_ => Stash.Stash());
    }

    /// <summary>The journal went away (with or without a batch in flight): carry on from memory and the spool, try again later.</summary>
    private void JournalLost(string problem)
    {
        OnJournalDown(problem);
        if (_inFlight is { } inFlight)
        {
            _inFlight = null;
            _state = inFlight.StateAfter;
            Become(Running);
            inFlight.Then();
            Stash.UnstashAll();
        }
    }

    private void OnJournalUp()
    {
        if (_journalDownSince is { } since)
            _log.Info("Heartbeat journal recovered (unreachable since {Since:u})", since);
        Timers.Cancel(JournalRestartTimer);
        _journalUp = true;
    }

    /// <summary>
    /// A write was confirmed (or there was nothing to write): the outage is over. Not on a mere recovery:
    /// a read-only journal recovers, then fails every write (the backoff keeps growing then).
    /// </summary>
    private void OnJournalWritable()
    {
        if (_journalDownSince is { } since)
            _log.Info("Heartbeat journal is back: writes confirmed (unreachable since {Since:u})", since);
        _journalFailures = 0;
        _journalDownSince = null;
        _journalProblem = null;
    }

    private void OnJournalDown(string problem)
    {
        _journalUp = false;
        _journalDownSince ??= Context.System.Scheduler.Now;
        _journalProblem = problem;
        _journalFailures++;
        var backoff = TimeSpan.FromTicks(Math.Min(JournalMaxBackoff.Ticks, JournalMinBackoff.Ticks * (1L << Math.Min(_journalFailures - 1, 10))));
        backoff += TimeSpan.FromTicks((long)(backoff.Ticks * 0.2 * Random.Shared.NextDouble()));
        _log.Warning("Heartbeat journal unreachable ({Problem}); heartbeats go on, state kept in {Store}; next try in {Backoff}",
            problem, _spool is null ? "memory only (no spool configured)" : $"the local spool {_spool.Path}", backoff);
        Timers.StartSingleTimer(JournalRestartTimer, RestartJournal.Instance, backoff);
    }

    private void StartJournal()
    {
        _journalIncarnation++;
        _journal = Context.ActorOf(HeartbeatJournal.Props(_options.PersistenceId, _options.Heartbeat.SnapshotEvery), $"journal-{_journalIncarnation}");
        Context.Watch(_journal);
        var incarnation = _journalIncarnation;
        Task.Delay(JournalRecoveryTimeout).ContinueWith(_ => new JournalRecoveryTimedOut(incarnation), TaskScheduler.Default).PipeTo(Self);
    }

    /// <summary>
    /// Stores a batch of events, then runs <paramref name="then"/> with the state after them. The batch goes
    /// to the spool first; with the journal up it is written there before <paramref name="then"/> runs
    /// (commands wait meanwhile); with the journal down the state moves on from memory and the spool.
    /// </summary>
    private void Store(IReadOnlyList<IHeartbeatEvent> events, Action then)
    {
        if (events.Count == 0)
        {
            then();
            return;
        }
        var after = events.Aggregate(_state, (s, e) => s.Apply(e));
        long? spooled = null;
        if (_spool is not null)
        {
            try
            {
                spooled = _spool.Append(events, after);
            }
            catch (Exception ex)
            {
                _log.Error(ex, "Heartbeat spool {Spool} could not be written: this batch is kept in memory only", _spool.Path);
            }
        }
        _pending.Add(new SpooledBatch(spooled ?? --_memorySeq, events));
        if (_journalUp)
        {
            _inFlight = new InFlight(0, after, then);
            FlushPending();
            return;
        }
        _state = after;
        then();
    }

    /// <summary>Hands every batch the journal does not hold yet to it in one atomic write (with the spool's marker).</summary>
    private void FlushPending()
    {
        if (!_journalUp || _pending.Count == 0)
        {
            if (_inFlight is { } done)
            {
                _inFlight = null;
                _state = done.StateAfter;
                done.Then();
            }
            return;
        }
        var upTo = _pending.Max(b => b.Seq);
        // Batches kept in memory only (the spool failed) carry negative numbers: the spool knows nothing of them, and
        // whenever a spooled batch is in this write the highest number is a spool number, so the marker covers exactly the spool.
        var spoolId = _spool is not null && upTo > 0 ? _spool.SpoolId : null;
        var events = _pending.SelectMany(b => b.Events).ToList();
        var inFlight = _inFlight ?? new InFlight(0, _state, () => { });
        _inFlight = inFlight with { UpToSeq = upTo };
        _journal.Tell(new PersistBatch(upTo, events, spoolId));
        Task.Delay(JournalWriteTimeout).ContinueWith(_ => new JournalWriteTimedOut(upTo), TaskScheduler.Default).PipeTo(Self);
        Become(Persisting);
    }

    /// <summary>How far the recovered journal holds this node's spool (its <see cref="SpoolReconciled"/> marker; 0 = nothing).</summary>
    private long SpoolMark(JournalRecovered recovered) => _spool is null ? 0 : recovered.SpoolMarks.GetValueOrDefault(_spool.SpoolId);

    /// <summary>The spooled batches up to <paramref name="mark"/> are in the journal: forget them here and in the spool (memory-only batches stay).</summary>
    private void ForgetSpooledUpTo(long mark)
    {
        _pending.RemoveAll(b => b.Seq > 0 && b.Seq <= mark);
        if (mark > 0) SafeSpool(s => { s.DeleteUpTo(mark); return true; });
    }

    private T? SafeSpool<T>(Func<HeartbeatSpool, T> action)
    {
        if (_spool is null) return default;
        try
        {
            return action(_spool);
        }
        catch (Exception ex)
        {
            _log.Error(ex, "Heartbeat spool {Spool} failed", _spool.Path);
            return default;
        }
    }

    private void Running()
    {
        Receive<JournalRecovered>(recovered =>
        {
            if (Sender != _journal) return;
            OnJournalUp();
            ForgetSpooledUpTo(SpoolMark(recovered));
            _log.Info("Heartbeat journal recovered: reconciling {Batches} batches kept during the outage", _pending.Count);
            var before = _state.Outbox;
            if (_pending.Count == 0)
            {
                OnJournalWritable();
                _state = recovered.State;
                DeliverNew(before);
                return;
            }
            _inFlight = new InFlight(0, _state, () => DeliverNew(before));
            FlushPending();
        });
        Receive<Terminated>(t =>
        {
            if (t.ActorRef == _journal) JournalLost(_journalUp ? "the journal stopped" : "the journal could not be recovered");
        });
        Receive<JournalRecoveryTimedOut>(t =>
        {
            if (t.Incarnation != _journalIncarnation || _journalUp) return;
            Context.Unwatch(_journal);
            Context.Stop(_journal);
            OnJournalDown($"the journal did not recover within {JournalRecoveryTimeout.TotalSeconds:0} s");
        });
        Receive<JournalWriteTimedOut>(_ => { });
        Receive<BatchPersisted>(_ => { });
        Receive<RestartJournal>(_ =>
        {
            if (!_journalUp) StartJournal();
        });

        Receive<RetrySoftChecks>(_ =>
        {
            // A round in flight observes the soft checks too; when it completes the retry is scheduled again if needed.
            if (_round is null) StartRound(retry: true);
        });
        Receive<ReprobeBreakers>(_ =>
        {
            if (_state.OpenBreakers.IsEmpty) return;
            if (_round is null) StartRound();
            else if (_round.Retry) _fullRoundPending = true;
        });
        Receive<HeartbeatTick>(_ =>
        {
            if (_round is { Retry: true })
            {
                // A short retry round must not swallow a scheduled heartbeat: it follows at once.
                _fullRoundPending = true;
                return;
            }
            if (_round is not null)
            {
                _log.Warning("Heartbeat tick skipped: {HeartbeatId} is still running", _round.Id);
                return;
            }
            StartRound();
        });
        Receive<RunHeartbeatNow>(run =>
        {
            _fullVerificationRequested |= run.FullVerification;
            if (_round is { Retry: true })
            {
                // Asked for a heartbeat, not a retry of some checks: the full round right after this one answers.
                _nextRoundWaiters.Add(Sender);
                _fullRoundPending = true;
                return;
            }
            _waiters.Add(Sender);
            if (_round is null) StartRound();
        });
        Receive<GroupResult>(result =>
        {
            if (_round is null || _closing) return;
            _round = _round.With(result);
            if (_round.IsComplete) CloseRound();
        });
        Receive<RoundDeadline>(deadline =>
        {
            if (_round is null || _closing || _round.Id != deadline.HeartbeatId) return;
            var missing = _round.Expected.Where(g => !_round.Received.ContainsKey(g.Group)).Select(g => g.Group);
            _log.Warning("Heartbeat {HeartbeatId}: no answer from {MissingGroups} by the deadline", _round.Id, string.Join(", ", missing));
            CloseRound();
        });
        Receive<RoundClosed>(CompleteRound);
        Receive<OrchestratorEscalation>(escalation =>
        {
            // Repeated crashes: alert now (a round starts at once and carries it), not at the next interval.
            _log.Error("Orchestrator {Orchestrator} crashed {Crashes} times within {Window}; next restart in {NextRestartIn}: {LastError}",
                escalation.Orchestrator, escalation.Crashes, escalation.Window, escalation.NextRestartIn, escalation.LastError);
            _escalations.Add(escalation);
            if (_round is null) StartRound();
        });
        Receive<NotificationDelivered>(delivered => Store(new IHeartbeatEvent[] { delivered }, () => { }));
        Receive<RunLogsWritten>(OnRunLogsWritten);
        Receive<RetryWriteBlock>(_ => RetryHeldWriteBlock());
        Receive<ReconcileWriteBlock>(_ => ReconcileLiftedWriteBlock());
        Receive<WriteBlockReconciled>(reconciled =>
        {
            foreach (var action in reconciled.Outcome.Actions)
                _log.Warning("Write block: {Action} {Outcome}", action.Action, action.Outcome);
            Store(reconciled.Outcome.Events, ScheduleWriteBlockRetry);
        });
        Receive<RetryRunLogs>(_ => WriteUnloggedRuns());
        Receive<GetHeartbeatState>(_ => Sender.Tell(_state));
    }

    /// <summary>After adopting the journal's state: deliver what is in its outbox and was not in memory's.</summary>
    private void DeliverNew(System.Collections.Immutable.ImmutableDictionary<string, QueuedNotification> before)
    {
        if (_options.DryRun) return;
        foreach (var queued in _state.Outbox.Values.Where(q => !before.ContainsKey(q.Notification.Id)))
            _alerts.Tell(new DeliverNotification(queued));
    }

    public string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(HeartbeatSupervisorOptions options) => Akka.Actor.Props.Create(() => new HeartbeatSupervisor(options));

    protected override void PreStart()
    {
        // A cluster node's fleet runs on every node (/user/fleet); the supervisor reaches them through a gateway.
        var orchestrators = Context.ActorOf(_options.OrchestratorsGateway ?? OrchestratorFleetActor.Props(_options.Orchestrators, _options.Fleet), "orchestrators");
        _repairs = new Repairs.HeartbeatRepairs(orchestrators, _options.Orchestrators, _options.RepairOptions, _options.ApiServer);
        _checks = Context.ActorOf(CheckGroupsActor.Props(_options.Groups, new CheckGroupEnvironment(orchestrators)), "checks");
        _alerts = Context.ActorOf(AlertDeliveryActor.Props(_options.AlertDelivery), "alerts");
        if (_options.SpoolPath is { } spoolPath && !_options.DryRun)
        {
            try
            {
                var serializer = new Serialization.ClawKeeperSerializer((Akka.Actor.ExtendedActorSystem)Context.System);
                // Keyed by persistence id AND journal: batches meant for one journal never go into another.
                var key = _options.JournalIdentity is { Length: > 0 } journal ? $"{_options.PersistenceId} @ {journal}" : _options.PersistenceId;
                _spool = HeartbeatSpool.Open(spoolPath, key, serializer);
                _pending.AddRange(_spool.Pending());
            }
            catch (Exception ex)
            {
                _log.Error(ex, "Heartbeat spool unusable: a journal outage keeps the state in memory only");
                _spool = null;
            }
        }
        StartJournal();
    }

    private void Started()
    {
        _log.Info("Heartbeat supervisor recovered: {HeartbeatsRecorded} heartbeats recorded, {ConsecutiveFailures} consecutive failures, write block {WriteBlock}, {UnloggedRuns} runs waiting for agent_runs",
            _state.HeartbeatsRecorded, _state.ConsecutiveFailures,
            _state.WriteBlock.Active ? $"active since {_state.WriteBlock.Since:u} (#{_state.WriteBlock.BlockId?.ToString() ?? "not yet in the database"})" : "none",
            _state.UnloggedRuns.Count);
        if (_options.Scheduled)
            Timers.StartPeriodicTimer(TickTimer, HeartbeatTick.Instance, _options.Heartbeat.InitialDelay, _options.Heartbeat.Interval);
        if (!_options.DryRun && _state.UnloggedRuns.Count > 0)
            Self.Tell(RetryRunLogs.Instance);
        ScheduleWriteBlockRetry();
        ScheduleSoftRetry();
        // The outbox survives restarts: whatever was not handed off goes out again.
        if (!_options.DryRun)
            foreach (var queued in _state.Outbox.Values)
                _alerts.Tell(new DeliverNotification(queued));
    }

    /// <summary>While a block is held but not yet in the database, keep trying (not only at the next heartbeat).</summary>
    private void ScheduleWriteBlockRetry()
    {
        if (!_options.DryRun && _options.WriteBlocks is not null && _state.WriteBlock.AwaitingDatabase)
            Timers.StartSingleTimer(WriteBlockRetryTimer, RetryWriteBlock.Instance, WriteBlockRetryInterval);
    }

    /// <summary>Checks in soft state are re-run at the retry cadence until they recover or are confirmed (hard).</summary>
    private void ScheduleSoftRetry()
    {
        if (_options.Scheduled && !_options.DryRun && _state.Checks.SoftChecks.Count > 0)
            Timers.StartSingleTimer(RetryTimer, RetrySoftChecks.Instance, _options.Heartbeat.RetryPolicy.Interval);
    }

    private void RetryHeldWriteBlock()
    {
        if (_round is not null || _options.WriteBlocks is null || !_state.WriteBlock.AwaitingDatabase)
        {
            ScheduleWriteBlockRetry();
            return;
        }
        ReconcileWriteBlockNow();
    }

    /// <summary>A super_admin lifted the block: record it now (a round in flight reconciles itself; check again after it).</summary>
    private void ReconcileLiftedWriteBlock()
    {
        if (_options.DryRun || _options.WriteBlocks is null) return;
        if (_round is not null)
        {
            Timers.StartSingleTimer(WriteBlockReconcileTimer, ReconcileWriteBlock.Instance, TimeSpan.FromSeconds(1));
            return;
        }
        ReconcileWriteBlockNow();
    }

    /// <summary>The guard outside a round, with no new failure: applies a held block, notices a lifted one.</summary>
    private void ReconcileWriteBlockNow()
    {
        _options.WriteBlocks!.ReconcileAsync(_state.WriteBlock, null, Context.System.Scheduler.Now, CancellationToken.None)
            .PipeTo(Self, success: outcome => new WriteBlockReconciled(outcome),
                failure: ex => new WriteBlockReconciled(new WriteBlockOutcome(Array.Empty<IHeartbeatEvent>(),
                    new[] { new ActionReport("block_writes", _state.WriteBlock.Reason ?? "", $"re-apply failed: {ex.GetBaseException().Message}") })));
    }

    private void StartRound(bool retry = false)
    {
        var now = Context.System.Scheduler.Now;
        var id = HeartbeatDecisions.NextId(now, _state.Latest?.Id);
        var cadence = _options.IntegrityCadence;
        IReadOnlySet<string>? only = null;
        List<ExpectedGroup> expected;
        bool full;
        DateTimeOffset? windowStart;
        if (retry)
        {
            // Only the checks in soft state, incrementally (a retry never re-runs the full integrity verification),
            // over the event window of the round that found the problem (extended to now).
            only = _state.Checks.SoftChecks.ToHashSet(StringComparer.Ordinal);
            expected = _options.Groups
                .Select(g => new ExpectedGroup(g.Group, g.CheckIds.Where(c => only.Contains(CheckStates.KeyOf(g.Group, c))).ToList()))
                .Where(g => g.CheckIds.Count > 0)
                .ToList();
            if (expected.Count == 0 || _state.Latest is null) return;
            full = false;
            windowStart = _state.Checks.FullRoundWindowStart;
        }
        else
        {
            expected = _options.Groups.Select(g => new ExpectedGroup(g.Group, g.CheckIds)).ToList();
            full = HeartbeatDecisions.FullVerificationDue(_state, now, cadence.FullVerificationEvery, _fullVerificationRequested);
            _fullVerificationRequested = false;
            windowStart = _state.Checks.FullRoundStartedAt ?? _state.Latest?.StartedAt;
        }
        _round = HeartbeatRound.Start(id, now, expected, _options.DryRun, full) with { Retry = retry, WindowStart = windowStart };
        _closing = false;
        _log.Info("Heartbeat {HeartbeatId} started: {GroupCount} groups{Mode}", id, expected.Count,
            retry ? $", retry of the checks in soft state: {string.Join(", ", only!.Order(StringComparer.Ordinal))}"
            : _round.HasIntegrityGroup ? (full ? ", full integrity verification" : ", incremental integrity verification") : "");
        if (expected.Count == 0)
        {
            CloseRound();
            return;
        }
        var deadline = full && _round.HasIntegrityGroup
            ? TimeSpan.FromTicks(Math.Max(_options.Heartbeat.GroupTimeout.Ticks, cadence.FullVerificationTimeout.Ticks))
            : _options.Heartbeat.GroupTimeout;
        Timers.StartSingleTimer(DeadlineTimer, new RoundDeadline(id), deadline);
        // The checks stop (their queries cancelled on the server) just before the round stops waiting for them.
        _checks.Tell(new RunCheckGroup(new CheckContext(id, now, _state.LastCompletedAt, _state.Watermarks, full, windowStart)
            { Deadline = deadline - TimeSpan.FromTicks(Math.Min(deadline.Ticks / 10, TimeSpan.TicksPerSecond)) }, only));
    }

    /// <summary>All groups answered (or the deadline passed): decide, then let the write-block guard act before completing.</summary>
    private void CloseRound()
    {
        var round = _round!;
        _closing = true;
        Timers.Cancel(DeadlineTimer);
        var groups = round.Close(_options.Heartbeat.GroupTimeout);
        var decision = HeartbeatDecisions.DecideRound(_state, round.Id, round.StartedAt, Context.System.Scheduler.Now, groups,
            _options.Heartbeat.EscalateAfterFailures, round.DryRun, _options.Heartbeat.RetryPolicy, _options.Heartbeat.FlappingPolicy,
            round.Retry, round.WindowStart);
        var report = decision.Report;
        var states = decision.States;
        if (_escalations.Count > 0)
        {
            var key = HeartbeatDecisions.CheckDedupKey(CheckGroups.SystemHealth, "orchestrators_reachable");
            if (!_state.OpenAlerts.Contains(key))
                report = report with
                {
                    Alerts = report.Alerts.Append(new AlertReport("super_admin", new[] { "email", "discord" }, key, "critical",
                        "repeated orchestrator crashes: " + string.Join("; ", _escalations.Select(e =>
                            $"{e.Orchestrator} crashed {e.Crashes} times within {e.Window.TotalSeconds:0} s (last: {e.LastError}); restarting after {e.NextRestartIn.TotalSeconds:0} s backoff")),
                        "recorded")).ToList(),
                };
            report = report with
            {
                Actions = report.Actions.Concat(_escalations.Select(e => new ActionReport("restart_orchestrator",
                    $"{e.Orchestrator}: {e.Crashes} crashes within {e.Window.TotalSeconds:0} s; its tasks went back to the queue", $"restart backed off {e.NextRestartIn.TotalSeconds:0} s"))).ToList(),
            };
            _escalations.Clear();
        }
        Integrations.BreakerAssessment? breakers = null;
        // Breakers have their own re-probe cadence: a retry round is not one of their re-checks.
        if (_options.Breakers is not null && !round.Retry)
        {
            breakers = Integrations.BreakerDecisions.Assess(_state.OpenBreakers, _options.Breakers.Snapshot(), _state.OpenAlerts,
                report.CompletedAt, _options.EscalateOpenBreakerAfterAttempts);
            report = report with
            {
                Actions = report.Actions.Concat(breakers.Actions).ToList(),
                Alerts = report.Alerts.Concat(breakers.Alerts).ToList(),
                OpenBreakers = breakers.Observations.Keys.Order(StringComparer.Ordinal).ToList(),
            };
        }
        var failure = _options.IntegrityCadence.BlockWrites ? HeartbeatDecisions.IntegrityFailureOf(groups) : null;

        if (round.DryRun)
        {
            var actions = new List<ActionReport>();
            if (failure is not null)
                actions.Add(new ActionReport("block_writes", failure.Reason, "not taken: dry run"));
            var planned = Repairs.RepairDecisions.Plan(groups, _options.ApiServer is not null);
            if (planned.RestartOrchestrators) actions.Add(new ActionReport("restart_orchestrator", "orchestrators_reachable failed", "not taken: dry run"));
            if (planned.RestartApiServer) actions.Add(new ActionReport("restart_api_server", planned.ApiObserved ?? "", "not taken: dry run"));
            Self.Tell(new RoundClosed(round, report, new WriteBlockOutcome(Array.Empty<IHeartbeatEvent>(), actions),
                Array.Empty<ClawKeeper.Platform.Alerts.AlertControl>(), breakers, states));
            return;
        }

        var repairPlan = Repairs.RepairDecisions.Plan(groups, _options.ApiServer is not null);
        var now = report.CompletedAt;
        var currentBlock = _state.WriteBlock;
        var guard = _options.WriteBlocks;
        var repairs = _repairs;
        var openAlerts = _state.OpenAlerts;
        var apiFlapping = states.Checks.TryGetValue(CheckStates.KeyOf(CheckGroups.SystemHealth, Repairs.RepairDecisions.ApiServerCheck), out var apiState) && apiState.Flapping;
        var reason = $"{round.Id}: orchestrators_reachable";
        CloseAsync().PipeTo(Self);

        async Task<RoundClosed> CloseAsync()
        {
            // Repairs first (they may take a ping timeout or an API restart), so their outcome and re-check are in this report.
            var repaired = new List<ActionReport>();
            var repairAlerts = new List<AlertReport>();
            if (repairPlan.RestartOrchestrators)
                repaired.AddRange(await repairs.RestartHungOrchestratorsAsync(reason).ConfigureAwait(false));
            if (repairPlan.RestartApiServer && await repairs.RestartApiServerAsync(repairPlan.ApiObserved ?? "").ConfigureAwait(false) is { } api)
            {
                repaired.Add(api.Action);
                if (Repairs.RepairDecisions.ApiRestartAlert(api.Action, api.Recovered, openAlerts, apiFlapping) is { } alert)
                    repairAlerts.Add(alert);
            }
            var withRepairs = report with
            {
                Actions = report.Actions.Concat(repaired).ToList(),
                Alerts = report.Alerts.Concat(repairAlerts).ToList(),
            };

            WriteBlockOutcome outcome;
            if (guard is null)
            {
                outcome = failure is not null && !currentBlock.Active
                    ? new WriteBlockOutcome(new IHeartbeatEvent[] { new WriteBlockImposed(failure.Reason, failure.Checks, now) },
                        new[] { new ActionReport("block_writes", failure.Reason, "held by the supervisor (no database guard configured)") })
                    : new WriteBlockOutcome(Array.Empty<IHeartbeatEvent>(), Array.Empty<ActionReport>());
            }
            else
            {
                try
                {
                    outcome = await guard.ReconcileAsync(currentBlock, failure, now, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    outcome = new WriteBlockOutcome(
                        failure is null || currentBlock.Active ? Array.Empty<IHeartbeatEvent>() : new IHeartbeatEvent[] { new WriteBlockImposed(failure.Reason, failure.Checks, now) },
                        new[] { new ActionReport("block_writes", failure?.Reason ?? "", $"guard failed: {ex.GetBaseException().Message}") });
                }
            }
            return new RoundClosed(round, withRepairs, outcome, await ReadControlsAsync(now).ConfigureAwait(false), breakers, states);
        }
    }

    /// <summary>The acks and silences in force; without them (database down) every alert is treated as unsilenced: better twice than never.</summary>
    private async Task<IReadOnlyList<ClawKeeper.Platform.Alerts.AlertControl>> ReadControlsAsync(DateTimeOffset now)
    {
        if (_options.AlertControls is null) return Array.Empty<ClawKeeper.Platform.Alerts.AlertControl>();
        try
        {
            return await _options.AlertControls.ActiveAsync(now, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception)
        {
            return Array.Empty<ClawKeeper.Platform.Alerts.AlertControl>();
        }
    }

    private void CompleteRound(RoundClosed closed)
    {
        if (_round is null || _round.Id != closed.Round.Id) return;
        var round = closed.Round;

        // The report shows the block as it stands after the guard acted.
        var afterBlock = closed.WriteBlocks.Events.Aggregate(_state, (s, e) => s.Apply(e));
        var report = closed.Report with
        {
            Actions = closed.Report.Actions.Concat(closed.WriteBlocks.Actions).ToList(),
            WriteBlock = afterBlock.WriteBlock.ToReport(),
        };
        if (!_journalUp && !round.DryRun) report = JournalOutage.Annotate(report, _journalDownSince, _journalProblem, _spool?.Path, _pending.Count);

        if (round.DryRun)
        {
            _round = null;
            Completed(report with { Alerts = report.Alerts.Select(a => a with { Delivery = "not sent: dry run" }).ToList() });
            return;
        }

        var plan = AlertDecisions.Plan(_state.Incidents, report, closed.Controls, report.CompletedAt, _options.AlertDelivery.Policy);
        report = report with
        {
            Alerts = plan.Alerts,
            Incidents = plan.Incidents.Values
                .OrderBy(i => i.OpenedAt).ThenBy(i => i.DedupKey, StringComparer.Ordinal)
                .Select(i => new IncidentReport(i.DedupKey, i.Audience, i.OpenedAt, i.Acknowledged, i.Suppressed, i.LastNotifiedAt))
                .ToList(),
        };

        var events = new List<IHeartbeatEvent> { new HeartbeatRecorded(report) };
        events.AddRange(closed.WriteBlocks.Events);
        if (round.HasIntegrityGroup)
        {
            var verified = _state.Watermarks.Advance(round.Progress, round.FullVerification && round.IntegrityAllPassed, report.CompletedAt);
            if (verified != _state.Watermarks) events.Add(new IntegrityVerified(verified));
        }
        if (!plan.Incidents.SequenceEqual(_state.Incidents)) events.Add(new IncidentsUpdated(plan.Incidents));
        var breakerAssessment = closed.Breakers;
        if (breakerAssessment is not null && !breakerAssessment.Observations.SequenceEqual(_state.OpenBreakers))
            events.Add(new BreakersObserved(breakerAssessment.Observations));
        events.Add(new CheckStatesObserved(closed.States));
        var deliverable = plan.Notifications.Where(n => !n.PendingChannels.IsEmpty).ToList();
        if (plan.Notifications.Count > 0) events.Add(new NotificationsQueued(plan.Notifications));

        Store(events, () =>
        {
            _round = null;
            // Before the report goes out: whoever reacts to it finds the retry already scheduled.
            ScheduleSoftRetry();
            Completed(report);
            // Persisted first, sent second: a crash in between re-sends from the recovered outbox.
            foreach (var queued in deliverable) _alerts.Tell(new DeliverNotification(queued));
            WriteUnloggedRuns();
            ScheduleWriteBlockRetry();
            // An open breaker is re-checked once its reset timeout let the half-open trial through.
            if (breakerAssessment?.ReprobeAfter is { } reprobe)
                Timers.StartSingleTimer(ReprobeTimer, ReprobeBreakers.Instance, reprobe);
            // An orchestrator escalation that arrived while this round was closing gets its own round now,
            // as does a tick or a request that arrived during a retry round.
            if (_escalations.Count > 0 || _fullRoundPending) StartPendingFullRound();
        });
    }

    private void StartPendingFullRound()
    {
        _fullRoundPending = false;
        _waiters.AddRange(_nextRoundWaiters);
        _nextRoundWaiters.Clear();
        StartRound();
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
        // Runs recorded while this write was in flight go in now, not at the next round.
        if (result.Written.Count > 0)
            Store(result.Written.Select(id => (IHeartbeatEvent)new HeartbeatRunLogged(id)).ToList(), () =>
            {
                if (result.Error is null) WriteUnloggedRuns();
            });
    }
}
