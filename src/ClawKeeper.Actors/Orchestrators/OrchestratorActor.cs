using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using ClawKeeper.Platform.Tasks;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>
/// One domain-lead orchestrator with its bounded worker pool.
/// <para>
/// Observing (no queue, or claiming off): it answers pings with its idle pool and touches nothing.
/// </para>
/// <para>
/// Working: after a start (first or restart) it releases whatever its claimer id still holds, then
/// claims up to its free workers (<see cref="ITaskQueue.ClaimAsync"/>), runs each task through the
/// <see cref="ITaskExecutor"/> off the actor's thread (start → execute → record, the database writes
/// retried with backoff until they succeed), and reports real busy counts in its pong. A database
/// error stops the claiming for a backoff with jitter; it never crashes the actor. When it stops or
/// crashes, every running attempt is cancelled and, once they have stopped (or the release grace has
/// passed), its tasks are released back to pending — by a background task that the next incarnation
/// waits for before it claims, so no task is held twice by this claimer.
/// </para>
/// </summary>
public sealed class OrchestratorActor : ReceiveActor, IWithTimers
{
    private const string PollTimer = "poll";
    private const string ResumeTimer = "resume";
    private static long _ids;

    private readonly OrchestratorDefinition _definition;
    private readonly OrchestratorFleetOptions? _work;
    private readonly OrchestratorHandoff _handoff;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<long, InFlight> _inFlight = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly string _claimerId;
    private OrchestratorIncarnation? _current;
    private OrchestratorMode _mode = OrchestratorMode.Observing;
    private (long Id, Task Task)? _claim;
    private long _recoveryId;
    private bool _queueMayHaveMore;
    private int _incarnation;
    private int _consecutiveDbFailures;
    private long _dbErrors;
    private string? _lastDbError;
    private long _completed, _retries, _failed, _discarded;

    /// <summary>An orchestrator that only answers pings.</summary>
    public OrchestratorActor(OrchestratorDefinition definition)
        : this(definition, null, new OrchestratorHandoff())
    {
    }

    public OrchestratorActor(OrchestratorDefinition definition, OrchestratorFleetOptions? work, OrchestratorHandoff handoff)
    {
        _definition = definition;
        _work = work is { ClaimTasks: true } ? work : null;
        _handoff = handoff;
        _claimerId = PostgresTaskQueue.ClaimerId(work?.NodeId ?? "observer", definition.Name);

        Receive<PingOrchestrator>(_ => Sender.Tell(new OrchestratorPong(_definition.Name, _definition.Workers, _inFlight.Count)));
        Receive<GetOrchestratorStatus>(_ => Sender.Tell(Status()));
        Receive<Recovered>(recovered =>
        {
            if (recovered.RecoveryId == _recoveryId) OnRecovered(recovered);
        });
        Receive<RecoveryFailed>(failed =>
        {
            if (failed.RecoveryId == _recoveryId) OnDatabaseFailure("recovery", failed.Error, Recover.Instance);
        });
        Receive<Recover>(_ => BeginRecovery());
        Receive<ClaimNow>(_ => TryClaim());
        Receive<Claimed>(OnClaimed);
        Receive<ClaimFailed>(failed =>
        {
            if (_claim?.Id != failed.ClaimId) return;
            _claim = null;
            _current?.Untrack(failed.ClaimId);
            OnDatabaseFailure("claim", failed.Error, Resume.Instance);
        });
        Receive<Resume>(_ =>
        {
            if (_mode == OrchestratorMode.DatabaseBackoff) StartClaiming();
        });
        Receive<WorkFinished>(OnWorkFinished);
        Receive<DatabaseTrouble>(trouble =>
        {
            _dbErrors++;
            _lastDbError = trouble.Error;
            if (trouble.Failures == 1)
                _log.Warning("Orchestrator {0}: could not {1} task {2} ({3}); retrying with backoff, the worker stays busy", _definition.Name, trouble.Stage, trouble.TaskId, trouble.Error);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(OrchestratorDefinition definition) => Akka.Actor.Props.Create(() => new OrchestratorActor(definition));

    public static Props Props(OrchestratorDefinition definition, OrchestratorFleetOptions? work, OrchestratorHandoff handoff) =>
        Akka.Actor.Props.Create(() => new OrchestratorActor(definition, work, handoff));

    protected override void PreStart()
    {
        _incarnation = _handoff.NextIncarnation();
        _current = _handoff.Begin(_stop, _incarnation);
        if (_work is null)
        {
            _log.Debug("Orchestrator {0} up with {1} workers (observing: claims no tasks)", _definition.Name, _definition.Workers);
            return;
        }

        _log.Info("Orchestrator {0} up with {1} workers as {2} (start #{3})", _definition.Name, _definition.Workers, _claimerId, _incarnation);
        BeginRecovery();
    }

    protected override void PostStop()
    {
        // Abandoned by the fleet while hung: its release was handed over then; a second one would release the next incarnation's tasks.
        if (_current is { } current && !current.TryEnd()) return;
        if (_work is null) return;
        _stop.Cancel();
        var attempts = _inFlight.Values.Select(f => (Task)f.Work).ToList();
        if (_claim is { } claim) attempts.Add(claim.Task);
        var reason = $"orchestrator {_claimerId} stopped (start #{_incarnation}) with {_inFlight.Count} attempts in flight";
        _handoff.HandOver(DrainThenReleaseAsync(_work, _claimerId, _definition.Name, attempts, reason, Context.System.EventStream, Context.System.WhenTerminated, _log));
    }

    /// <summary>
    /// The fleet gives up on a hung incarnation (it does not process messages, so it cannot stop itself):
    /// cancels its attempts and hands over the release of its tasks, as <see cref="PostStop"/> would. Runs on
    /// the fleet's thread. False when the incarnation already ended (stopped, or abandoned before).
    /// </summary>
    internal static bool Abandon(OrchestratorHandoff handoff, OrchestratorFleetOptions? work, OrchestratorDefinition definition, string reason, ActorSystem system, ILoggingAdapter log)
    {
        if (handoff.Current is not { } current || !current.TryEnd()) return false;
        current.Stop.Cancel();
        if (work is not { ClaimTasks: true }) return true;
        var claimerId = PostgresTaskQueue.ClaimerId(work.NodeId, definition.Name);
        var attempts = current.Attempts;
        handoff.HandOver(DrainThenReleaseAsync(work, claimerId, definition.Name, attempts,
            $"orchestrator {claimerId} hung (start #{current.Number}) with {attempts.Count} attempts in flight: {reason}", system.EventStream, system.WhenTerminated, log));
        return true;
    }

    // ---------------------------------------------------------------- recovery

    private void BeginRecovery()
    {
        _mode = OrchestratorMode.Recovering;
        var work = _work!;
        var claimerId = _claimerId;
        var name = _definition.Name;
        var stream = Context.System.EventStream;
        var stop = _stop.Token;
        var previous = _handoff.TakePendingRelease() ?? Task.CompletedTask;
        // Tagged: after a restart, a late answer of the previous incarnation's recovery reaches this one (same ref).
        var id = _recoveryId = Interlocked.Increment(ref _ids);
        RecoverAsync().PipeTo(Self, success: released => new Recovered(id, released), failure: ex => new RecoveryFailed(id, ex));

        async Task<IReadOnlyList<string>> RecoverAsync()
        {
            // The previous incarnation's release first (it waits for that incarnation's attempts to stop)...
            await previous.ConfigureAwait(false);
            // ...then whatever this claimer still holds (leftovers of a dead process with this node id, or
            // a release that gave up). Nothing of ours runs now, so everything it holds is orphaned.
            var leftovers = await work.Queue.ReleaseAsync(claimerId, $"orchestrator {claimerId} restarted", stop).ConfigureAwait(false);
            if (leftovers.Count > 0)
                stream.Publish(new OrchestratorTasksReleased(name, claimerId, leftovers, "held when the orchestrator started", Stopwatch.GetTimestamp()));
            if (await work.Queue.WhyCannotClaimAsync(stop).ConfigureAwait(false) is { } why)
                throw new InvalidOperationException(why);
            return leftovers;
        }
    }

    private void OnRecovered(Recovered recovered)
    {
        if (recovered.Released.Count > 0)
            _log.Warning("Orchestrator {0}: released {1} tasks it held at start: {2}", _definition.Name, recovered.Released.Count, string.Join(", ", recovered.Released.Take(10)));
        DatabaseIsBack();
        StartClaiming();
    }

    // ---------------------------------------------------------------- claiming

    private void DatabaseIsBack()
    {
        if (_consecutiveDbFailures == 0) return;
        _log.Info("Orchestrator {0}: database back after {1} failed attempts; claiming again", _definition.Name, _consecutiveDbFailures);
        _consecutiveDbFailures = 0;
    }

    private void StartClaiming()
    {
        _mode = OrchestratorMode.Claiming;
        Timers.StartPeriodicTimer(PollTimer, ClaimNow.Instance, _work!.Settings.PollInterval);
        TryClaim();
    }

    private void TryClaim()
    {
        // An abandoned incarnation that comes back to life claims nothing: its successor owns the claimer id now.
        if (_mode != OrchestratorMode.Claiming || _claim is not null || _stop.IsCancellationRequested) return;
        var free = _definition.Workers - _inFlight.Count;
        if (free <= 0) return;

        var work = _work!;
        var requested = Math.Min(free, work.Settings.MaxClaimBatch);
        var id = Interlocked.Increment(ref _ids);
        var claim = work.Queue.ClaimAsync(_definition.Name, _claimerId, requested, _stop.Token);
        _claim = (id, claim);
        _current?.Track(id, claim);
        claim.PipeTo(Self, success: tasks => new Claimed(id, tasks, requested), failure: ex => new ClaimFailed(id, ex));
    }

    private void OnClaimed(Claimed claimed)
    {
        if (_claim?.Id != claimed.ClaimId) return; // an earlier incarnation's claim: its release covers those tasks
        _claim = null;
        _current?.Untrack(claimed.ClaimId);
        DatabaseIsBack();

        foreach (var task in claimed.Tasks) Start(task);
        _queueMayHaveMore = claimed.Tasks.Count >= claimed.Requested;
        if (_queueMayHaveMore) Self.Tell(ClaimNow.Instance);
    }

    private void OnDatabaseFailure(string stage, Exception error, object retry)
    {
        if (_stop.IsCancellationRequested) return;
        var settings = _work!.Settings;
        _consecutiveDbFailures++;
        _dbErrors++;
        _lastDbError = Describe(error);
        _mode = _mode == OrchestratorMode.Recovering ? OrchestratorMode.Recovering : OrchestratorMode.DatabaseBackoff;
        Timers.Cancel(PollTimer);
        var delay = Backoff.Exponential(settings.DatabaseBackoffMin, settings.DatabaseBackoffMax, _consecutiveDbFailures, 0.5);
        _log.Warning("Orchestrator {0}: {1} failed ({2} in a row): {3}; not claiming, next try in {4:0} ms",
            _definition.Name, stage, _consecutiveDbFailures, _lastDbError, delay.TotalMilliseconds);
        Timers.StartSingleTimer(ResumeTimer, retry, delay);
    }

    // ---------------------------------------------------------------- workers

    private void Start(ClaimedTask task)
    {
        var id = Interlocked.Increment(ref _ids);
        var context = new AttemptContext(_work!, Self, _stop.Token);
        var attempt = RunAttemptAsync(context, task);
        _inFlight[id] = new InFlight(task, attempt);
        _current?.Track(id, attempt);
        attempt.PipeTo(Self, success: report => new WorkFinished(id, report), failure: ex => new WorkFinished(id, AttemptReport.Broken(task, ex)));
    }

    private void OnWorkFinished(WorkFinished finished)
    {
        if (!_inFlight.Remove(finished.ExecutionId)) return; // an earlier incarnation's attempt
        _current?.Untrack(finished.ExecutionId);
        var r = finished.Report;
        switch (r.Kind)
        {
            case AttemptKind.Completed:
                _completed++;
                _log.Debug("Orchestrator {0}: task {1} completed (attempt {2}, {3} ms)", _definition.Name, r.Task.Id, r.Task.Attempt, r.DurationMs);
                break;
            case AttemptKind.RetryScheduled:
                _retries++;
                _log.Info("Orchestrator {0}: task {1} attempt {2} failed: {3}; retry from {4:O}", _definition.Name, r.Task.Id, r.Task.Attempt, r.Detail, r.NotBefore);
                break;
            case AttemptKind.Failed:
                _failed++;
                _log.Warning("Orchestrator {0}: task {1} failed for good after attempt {2}: {3}", _definition.Name, r.Task.Id, r.Task.Attempt, r.Detail);
                break;
            case AttemptKind.Discarded:
                _discarded++;
                _log.Warning("Orchestrator {0}: task {1} attempt {2} discarded: {3}", _definition.Name, r.Task.Id, r.Task.Attempt, r.Detail);
                break;
            case AttemptKind.Abandoned:
                break;
            case AttemptKind.Broken:
                // A bug, not a database or executor problem: let it crash; the restart releases the task.
                throw new OrchestratorFaultException($"Orchestrator {_definition.Name}: attempt {r.Task.Attempt} of task {r.Task.Id} broke: {r.Detail}");
        }

        if (_queueMayHaveMore) TryClaim();
    }

    private OrchestratorStatus Status() => new(
        _definition.Name, _claimerId, _definition.Workers, _inFlight.Count, _mode, _incarnation,
        _completed, _retries, _failed, _discarded, _consecutiveDbFailures, _dbErrors, _lastDbError);

    /// <summary>
    /// One attempt, off the actor's thread: start (assigned → running), execute, record. Database writes
    /// are retried with backoff until they succeed or the orchestrator stops. Never throws for a database
    /// or executor problem; the report says what happened.
    /// </summary>
    private static async Task<AttemptReport> RunAttemptAsync(AttemptContext c, ClaimedTask task)
    {
        await Task.Yield(); // off the actor's thread at once
        var settings = c.Work.Settings;
        try
        {
            if (!await c.Database(task, "start", () => c.Work.Queue.MarkRunningAsync(task, c.Stop)).ConfigureAwait(false))
                return AttemptReport.Of(AttemptKind.Discarded, task, "no longer assigned to this orchestrator when it was to start");

            var watch = Stopwatch.StartNew();
            TaskExecution execution;
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(c.Stop))
            {
                deadline.CancelAfter(settings.TaskTimeout);
                try
                {
                    execution = await c.Work.Executor.ExecuteAsync(task, deadline.Token).ConfigureAwait(false)
                                ?? TaskExecution.Failed("the executor returned no result");
                }
                catch (OperationCanceledException) when (c.Stop.IsCancellationRequested)
                {
                    return AttemptReport.Of(AttemptKind.Abandoned, task, "orchestrator stopped");
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                {
                    execution = TaskExecution.Failed($"timed out after {settings.TaskTimeout.TotalSeconds:0.###} s");
                }
                catch (Exception ex)
                {
                    execution = TaskExecution.Failed($"{ex.GetType().Name}: {ex.Message}");
                }
            }

            watch.Stop();
            var run = new TaskRunRecord(watch.ElapsedMilliseconds, execution.TokensUsed, execution.Cost, execution.OutputJson);
            // The outcome is recorded even when the orchestrator is stopping: its release waits for this
            // (within the grace), and the fencing refuses it if the task was released first.
            if (execution.Outcome == TaskOutcome.Completed)
            {
                return await c.Database(task, "record the completion of", () => c.Work.Queue.CompleteAsync(task, run, CancellationToken.None)).ConfigureAwait(false)
                    ? AttemptReport.Of(AttemptKind.Completed, task, null, run.DurationMs)
                    : AttemptReport.Of(AttemptKind.Discarded, task, "completed, but no longer assigned to this orchestrator: outcome not recorded", run.DurationMs);
            }

            var error = string.IsNullOrWhiteSpace(execution.Error) ? "failed (no error given)" : execution.Error;
            var failure = await c.Database(task, "record the failure of", () => c.Work.Queue.FailAsync(task, run, error, execution.Retryable, CancellationToken.None)).ConfigureAwait(false);
            return failure.Disposition switch
            {
                FailureDisposition.RetryScheduled => AttemptReport.Of(AttemptKind.RetryScheduled, task, error, run.DurationMs, failure.NotBefore),
                FailureDisposition.Failed => AttemptReport.Of(AttemptKind.Failed, task, error, run.DurationMs),
                _ => AttemptReport.Of(AttemptKind.Discarded, task, "failed, but no longer assigned to this orchestrator: outcome not recorded", run.DurationMs),
            };
        }
        catch (OperationCanceledException) when (c.Stop.IsCancellationRequested)
        {
            return AttemptReport.Of(AttemptKind.Abandoned, task, "orchestrator stopped");
        }
    }

    /// <summary>
    /// Runs on no actor: cancels nothing itself (the dying incarnation did), waits for its attempts (and an
    /// outstanding claim) to stop, at most the release grace, then releases the claimer's tasks, retrying
    /// database errors for a while. The next incarnation awaits this before claiming.
    /// </summary>
    internal static async Task DrainThenReleaseAsync(
        OrchestratorFleetOptions work, string claimerId, string name, IReadOnlyList<Task> attempts, string reason, EventStream stream,
        Task systemTerminated, ILoggingAdapter log)
    {
        if (attempts.Count > 0)
        {
            try
            {
                await Task.WhenAll(attempts).WaitAsync(work.Settings.ReleaseGrace).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                log.Warning("Orchestrator {0}: attempts still running {1:0} ms after cancellation; releasing their tasks anyway (a late outcome will be refused)",
                    name, work.Settings.ReleaseGrace.TotalMilliseconds);
            }
            catch (Exception)
            {
                // An attempt or claim failed: it is over, which is all that matters here.
            }
        }

        var giveUpAt = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        for (var failures = 1; ; failures++)
        {
            try
            {
                var released = await work.Queue.ReleaseAsync(claimerId, reason).ConfigureAwait(false);
                var at = Stopwatch.GetTimestamp();
                if (released.Count > 0)
                {
                    stream.Publish(new OrchestratorTasksReleased(name, claimerId, released, reason, at));
                    log.Info("Orchestrator {0}: {1} tasks back in the queue: {2}", name, released.Count, string.Join(", ", released.Take(10)));
                }

                return;
            }
            catch (Exception ex) when (ex is not ObjectDisposedException && !systemTerminated.IsCompleted && DateTime.UtcNow < giveUpAt)
            {
                log.Warning("Orchestrator {0}: releasing its tasks failed ({1}); retrying", name, Describe(ex));
                await Task.Delay(Backoff.Exponential(work.Settings.DatabaseBackoffMin, work.Settings.DatabaseBackoffMax, failures, 0.5)).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Shutting down with the database gone, or for too long: the next start of this claimer, or the
                // fleets' orphan sweep, puts them back.
                log.Error("Orchestrator {0}: could not release its tasks ({1}); the next start of {2} or the orphan sweep will", name, Describe(ex), claimerId);
                return;
            }
        }
    }

    private static string Describe(Exception error)
    {
        var e = error is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0] : error;
        return $"{e.GetType().Name}: {e.Message}";
    }

    // ---------------------------------------------------------------- messages and state
    // The answers of background work are IDeadLetterSuppression: they reach a stopped orchestrator routinely.

    private sealed record InFlight(ClaimedTask Task, Task<AttemptReport> Work);

    private sealed class ClaimNow
    {
        public static readonly ClaimNow Instance = new();
    }

    private sealed class Resume
    {
        public static readonly Resume Instance = new();
    }

    private sealed class Recover
    {
        public static readonly Recover Instance = new();
    }

    private sealed record Recovered(long RecoveryId, IReadOnlyList<string> Released) : IDeadLetterSuppression;

    private sealed record RecoveryFailed(long RecoveryId, Exception Error) : IDeadLetterSuppression;

    private sealed record Claimed(long ClaimId, IReadOnlyList<ClaimedTask> Tasks, int Requested) : IDeadLetterSuppression;

    private sealed record ClaimFailed(long ClaimId, Exception Error) : IDeadLetterSuppression;

    private sealed record WorkFinished(long ExecutionId, AttemptReport Report) : IDeadLetterSuppression;

    private sealed record DatabaseTrouble(string TaskId, string Stage, int Failures, string Error) : IDeadLetterSuppression;

    private enum AttemptKind
    {
        Completed,
        RetryScheduled,
        Failed,
        Discarded,
        Abandoned,
        Broken,
    }

    private sealed record AttemptReport(AttemptKind Kind, ClaimedTask Task, string? Detail, long DurationMs, DateTimeOffset? NotBefore)
    {
        public static AttemptReport Of(AttemptKind kind, ClaimedTask task, string? detail, long durationMs = 0, DateTimeOffset? notBefore = null) =>
            new(kind, task, detail, durationMs, notBefore);

        public static AttemptReport Broken(ClaimedTask task, Exception ex) => new(AttemptKind.Broken, task, Describe(ex), 0, null);
    }

    private sealed record AttemptContext(OrchestratorFleetOptions Work, IActorRef Self, CancellationToken Stop)
    {
        /// <summary>A database write of an attempt, retried with backoff until it succeeds or the orchestrator stops.</summary>
        public async Task<T> Database<T>(ClaimedTask task, string stage, Func<Task<T>> write)
        {
            for (var failures = 1; ; failures++)
            {
                try
                {
                    return await write().ConfigureAwait(false);
                }
                catch (Exception ex) when (!(ex is OperationCanceledException && Stop.IsCancellationRequested))
                {
                    Self.Tell(new DatabaseTrouble(task.Id, stage, failures, Describe(ex)));
                    await Task.Delay(Backoff.Exponential(Work.Settings.DatabaseBackoffMin, Work.Settings.DatabaseBackoffMax, failures, 0.5), Stop).ConfigureAwait(false);
                }
            }
        }
    }
}

/// <summary>
/// Carries an orchestrator's release from one incarnation to the next (the fleet keeps one per
/// orchestrator): the dying incarnation hands over the task that releases its claims once its attempts
/// have stopped, and the next incarnation waits for it before claiming.
/// </summary>
public sealed class OrchestratorHandoff
{
    private int _incarnations;
    private Task? _pendingRelease;
    private OrchestratorIncarnation? _current;

    /// <summary>The incarnation running now (or the last one), with what it has in flight.</summary>
    internal OrchestratorIncarnation? Current => Volatile.Read(ref _current);

    internal OrchestratorIncarnation Begin(CancellationTokenSource stop, int number)
    {
        var incarnation = new OrchestratorIncarnation(stop, number);
        Volatile.Write(ref _current, incarnation);
        return incarnation;
    }

    /// <summary>How many times the orchestrator started.</summary>
    public int Incarnations => Volatile.Read(ref _incarnations);

    /// <summary>The release still running, if any (e.g. for a test or a shutdown to wait for).</summary>
    public Task PendingRelease => Volatile.Read(ref _pendingRelease) ?? Task.CompletedTask;

    internal int NextIncarnation() => Interlocked.Increment(ref _incarnations);

    internal void HandOver(Task release) => Volatile.Write(ref _pendingRelease, release);

    internal Task? TakePendingRelease() => Interlocked.Exchange(ref _pendingRelease, null);
}

/// <summary>An orchestrator met a state it cannot handle; its fleet restarts it (and its tasks go back to the queue).</summary>
public sealed class OrchestratorFaultException(string message) : Exception(message);

/// <summary>
/// One start of an orchestrator as its fleet can see it from outside: its cancellation and the work it has
/// in flight (attempts and an outstanding claim), so a hung incarnation can be abandoned from the fleet's
/// thread. <see cref="TryEnd"/> makes sure exactly one of "stopped" and "abandoned" releases its tasks.
/// </summary>
internal sealed class OrchestratorIncarnation(CancellationTokenSource stop, int number)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, Task> _work = new();
    private int _ended;

    public CancellationTokenSource Stop { get; } = stop;

    public int Number { get; } = number;

    public IReadOnlyList<Task> Attempts => _work.Values.ToList();

    public void Track(long id, Task work) => _work[id] = work;

    public void Untrack(long id) => _work.TryRemove(id, out _);

    public bool TryEnd() => Interlocked.Exchange(ref _ended, 1) == 0;
}
