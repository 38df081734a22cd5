using Akka.Actor;
using Akka.Actor.Internal;
using Akka.Event;
using ClawKeeper.Platform.Tasks;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>
/// Parent of the nine orchestrators (<c>orchestrators/cfo</c>, ...). Pings and status queries are
/// forwarded so the orchestrator answers the asker directly (a hung orchestrator simply does not answer).
/// <para>
/// Repairs: whatever an orchestrator throws (or a <see cref="Kill"/>), its supervisor strategy restarts
/// it; the dying incarnation cancels its attempts and its tasks go back to the queue as soon as they have
/// stopped, so the healthy orchestrators of other nodes — or this one, once restarted — claim them.
/// Crashes are counted per orchestrator over a window (<see cref="FleetSupervisionSettings"/>): past the
/// restart budget the orchestrator is stopped and started again after an exponential backoff, and at the
/// escalation threshold the parent (or <see cref="OrchestratorFleetOptions.EscalateTo"/>) gets an
/// <see cref="OrchestratorEscalation"/>, also published on the event stream. An orchestrator that
/// stops for any other reason is started again after the minimum backoff. A working fleet also
/// sweeps, every orphan-sweep-interval, the tasks held longer than orphan-after by anyone (a node
/// that died without releasing them) back into the queue.
/// </para>
/// </summary>
public sealed class OrchestratorFleetActor : ReceiveActor, IWithTimers
{
    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly OrchestratorFleetOptions? _options;
    private readonly FleetSupervisionSettings _supervision;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private bool _sweeping;

    public OrchestratorFleetActor(IReadOnlyList<OrchestratorDefinition> orchestrators, OrchestratorFleetOptions? options = null)
    {
        _options = options;
        _supervision = options?.Settings.Supervision ?? FleetSupervisionSettings.Default;
        foreach (var definition in orchestrators)
        {
            var slot = new Slot(definition);
            _slots[definition.Name] = slot;
            Start(slot);
        }

        Receive<PingOrchestrator>(ping => Forward(ping.Orchestrator, ping));
        Receive<GetOrchestratorStatus>(query => Forward(query.Orchestrator, query));
        Receive<RestartOrchestrators>(restart =>
            Sender.Tell(new OrchestratorsRestarted(restart.Orchestrators.Distinct(StringComparer.Ordinal).Select(name => RestartHung(name, restart.Reason)).ToList())));
        Receive<Terminated>(OnTerminated);
        Receive<StartAgain>(again =>
        {
            if (_slots.TryGetValue(again.Orchestrator, out var slot) && slot.Child.IsNobody()) Start(slot);
        });
        Receive<SweepOrphans>(_ => SweepOrphansNow());
        Receive<OrphansSwept>(swept =>
        {
            _sweeping = false;
            if (swept.Error is not null)
                _log.Warning("Fleet: looking for orphaned tasks failed: {0}", swept.Error);
            else if (swept.Released.Count > 0)
            {
                _log.Warning("Fleet: {0} tasks held for more than {1} by claimers that never released them (a node that died?) are back in the queue: {2}",
                    swept.Released.Count, _options!.Settings.OrphanAfter, string.Join(", ", swept.Released.Take(10)));
                Context.System.EventStream.Publish(new StaleTasksReleased(swept.Released, _options.Settings.OrphanAfter));
            }
        });
    }

    protected override void PreStart()
    {
        if (_options is { ClaimTasks: true } && _options.Settings.OrphanAfter > TimeSpan.Zero)
            Timers.StartPeriodicTimer("orphan-sweep", SweepOrphans.Instance, _options.Settings.OrphanSweepInterval);
    }

    private void SweepOrphansNow()
    {
        if (_sweeping) return;
        _sweeping = true;
        var settings = _options!.Settings;
        _options.Queue.ReleaseStaleAsync(settings.OrphanAfter, $"held for more than {settings.OrphanAfter} without being released")
            .PipeTo(Self, success: released => new OrphansSwept(released, null), failure: ex => new OrphansSwept(Array.Empty<string>(), ex.GetBaseException().Message));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>A fleet that only answers pings (the one-shot check; the heartbeat before the fleet was wired).</summary>
    public static Props Props(IReadOnlyList<OrchestratorDefinition> orchestrators) =>
        Akka.Actor.Props.Create(() => new OrchestratorFleetActor(orchestrators, null));

    /// <summary>A fleet that works the queue when <see cref="OrchestratorFleetOptions.ClaimTasks"/> is true.</summary>
    public static Props Props(IReadOnlyList<OrchestratorDefinition> orchestrators, OrchestratorFleetOptions? options) =>
        Akka.Actor.Props.Create(() => new OrchestratorFleetActor(orchestrators, options));

    protected override SupervisorStrategy SupervisorStrategy() => new FleetSupervisorStrategy(OnChildFailure);

    private void Forward(string orchestrator, object message)
    {
        if (!_slots.TryGetValue(orchestrator, out var slot))
            Sender.Tell(new UnknownOrchestrator(orchestrator));
        else if (slot.Child.IsNobody() || slot.Stopping)
            Sender.Tell(new OrchestratorRestarting(orchestrator, slot.Crashes.Count, slot.RestartAt ?? DateTimeOffset.UtcNow));
        else
            slot.Child.Forward(message);
    }

    private void Start(Slot slot)
    {
        slot.RestartAt = null;
        slot.Stopping = false;
        // An abandoned (hung) incarnation keeps its name until its handler returns, if ever: the next one gets a fresh name.
        var name = Context.Child(slot.Definition.Name).IsNobody() ? slot.Definition.Name : $"{slot.Definition.Name}-{++slot.Generation}";
        slot.Child = Context.ActorOf(OrchestratorActor.Props(slot.Definition, _options, slot.Handoff), name);
        Context.Watch(slot.Child);
    }

    /// <summary>
    /// The restart of an orchestrator that stopped answering (the heartbeat's ping found it silent). A hung
    /// actor processes no message — not a <see cref="Kill"/>, not a PoisonPill — and <c>Context.Stop</c> takes
    /// effect only when its handler returns; so the fleet abandons it instead: cancels its attempts, hands over
    /// the release of its tasks (the same path as a crash), stops it (effective whenever it returns; its late
    /// messages and its own stop release nothing), and starts a fresh incarnation at once under a new name. The
    /// hang counts as a crash for the restart budget, backoff and escalation. A thread that never returns
    /// stays blocked: .NET cannot abort it; the log says so.
    /// </summary>
    private OrchestratorRestartOutcome RestartHung(string name, string reason)
    {
        if (!_slots.TryGetValue(name, out var slot))
            return new OrchestratorRestartOutcome(name, false, "unknown orchestrator");
        if (slot.Child.IsNobody() || slot.Stopping)
            return new OrchestratorRestartOutcome(name, false, $"already restarting (at {slot.RestartAt:u})");

        var hung = slot.Child;
        Context.Unwatch(hung);
        Context.Stop(hung);
        slot.Child = ActorRefs.Nobody;
        if (!OrchestratorActor.Abandon(slot.Handoff, _options, slot.Definition, reason, Context.System, _log))
            _log.Warning("Orchestrator {0}: its incarnation had already ended when it was to be abandoned", name);
        _log.Warning("Orchestrator {0} ({1}) did not answer pings ({2}): abandoned; its attempts are cancelled and its tasks go back to the queue. " +
                     "If its thread stays blocked it cannot be reclaimed, only left behind", name, hung.Path.Name, reason);

        var (restartNow, delay) = RecordFailure(slot, $"hung: {reason}", Context);
        if (restartNow)
        {
            var number = slot.Handoff.Incarnations + 1;
            Start(slot);
            return new OrchestratorRestartOutcome(name, true, $"restarted as {slot.Child.Path.Name} (start #{number})");
        }
        slot.RestartAt = DateTimeOffset.UtcNow + delay;
        Timers.StartSingleTimer($"start-{name}", new StartAgain(name), delay);
        return new OrchestratorRestartOutcome(name, false, $"restart backed off {delay.TotalSeconds:0.#} s ({slot.Crashes.Count} failures within {_supervision.CrashWindow})");
    }

    /// <summary>Called by the strategy on this actor's thread while it handles the child's failure: restart (true) or stop (false).</summary>
    private bool OnChildFailure(IActorContext context, IActorRef child, Exception cause)
    {
        var slot = _slots.Values.FirstOrDefault(s => s.Child.Equals(child));
        if (slot is null) return false; // an abandoned incarnation failing on its way out: let it stop
        var error = $"{cause.GetType().Name}: {cause.Message}";
        var (restartNow, delay) = RecordFailure(slot, error, context);
        slot.RestartDelay = restartNow ? null : delay;
        slot.Stopping = !restartNow;
        slot.RestartAt = restartNow ? null : DateTimeOffset.UtcNow + delay;
        return restartNow;
    }

    /// <summary>Counts a failure (crash or hang) in the window: restart now, or after a backoff; escalates once per streak.</summary>
    private (bool RestartNow, TimeSpan Delay) RecordFailure(Slot slot, string error, IActorContext context)
    {
        var now = DateTimeOffset.UtcNow;
        slot.Crashes.RemoveAll(at => now - at > _supervision.CrashWindow);
        if (slot.Crashes.Count == 0) slot.Escalated = false;
        slot.Crashes.Add(now);
        var crashes = slot.Crashes.Count;

        var restartNow = crashes <= _supervision.RestartsBeforeBackoff;
        var delay = restartNow
            ? TimeSpan.Zero
            : Backoff.Exponential(_supervision.BackoffMin, _supervision.BackoffMax, crashes - _supervision.RestartsBeforeBackoff, 0.2);
        if (restartNow)
            _log.Warning("Orchestrator {0} crashed ({1} in {2}): {3}; restarting it, its tasks go back to the queue", slot.Definition.Name, crashes, _supervision.CrashWindow, error);
        else
            _log.Warning("Orchestrator {0} crashed ({1} in {2}): {3}; its tasks go back to the queue, restart in {4:0} ms (backoff)", slot.Definition.Name, crashes, _supervision.CrashWindow, error, delay.TotalMilliseconds);

        if (crashes >= _supervision.EscalateAfter && !slot.Escalated)
        {
            slot.Escalated = true;
            _log.Error("Orchestrator {0} crashed {1} times in {2}: escalating", slot.Definition.Name, crashes, _supervision.CrashWindow);
            var escalation = new OrchestratorEscalation(slot.Definition.Name, crashes, _supervision.CrashWindow, error, delay);
            (_options?.EscalateTo ?? context.Parent).Tell(escalation, context.Self);
            context.System.EventStream.Publish(escalation);
        }

        return (restartNow, delay);
    }

    private void OnTerminated(Terminated terminated)
    {
        var slot = _slots.Values.FirstOrDefault(s => s.Child.Equals(terminated.ActorRef));
        if (slot is null) return;
        slot.Child = ActorRefs.Nobody;
        var delay = slot.RestartDelay ?? _supervision.BackoffMin;
        if (slot.RestartDelay is null)
            _log.Warning("Orchestrator {0} stopped; starting it again in {1:0} ms", slot.Definition.Name, delay.TotalMilliseconds);
        slot.RestartDelay = null;
        slot.RestartAt = DateTimeOffset.UtcNow + delay;
        Timers.StartSingleTimer($"start-{slot.Definition.Name}", new StartAgain(slot.Definition.Name), delay);
    }

    private sealed class Slot(OrchestratorDefinition definition)
    {
        public OrchestratorDefinition Definition { get; } = definition;
        public OrchestratorHandoff Handoff { get; } = new();
        public List<DateTimeOffset> Crashes { get; } = new();
        public IActorRef Child { get; set; } = ActorRefs.Nobody;
        public bool Escalated { get; set; }

        /// <summary>Suffix of the next replacement name while an abandoned incarnation still holds the plain one.</summary>
        public int Generation { get; set; }

        /// <summary>Stopped by the strategy for a backoff, Terminated not yet received.</summary>
        public bool Stopping { get; set; }
        public TimeSpan? RestartDelay { get; set; }
        public DateTimeOffset? RestartAt { get; set; }
    }

    private sealed record StartAgain(string Orchestrator);

    private sealed class SweepOrphans
    {
        public static readonly SweepOrphans Instance = new();
    }

    private sealed record OrphansSwept(IReadOnlyList<string> Released, string? Error) : IDeadLetterSuppression;

    /// <summary>
    /// One-for-one, every failure handled (a <see cref="Kill"/> included, which the default decider would
    /// stop): the fleet decides per child whether to restart now or stop and start again after a backoff.
    /// </summary>
    private sealed class FleetSupervisorStrategy(Func<IActorContext, IActorRef, Exception, bool> restart)
        : OneForOneStrategy(-1, -1, _ => Directive.Restart, loggingEnabled: true)
    {
        public override void ProcessFailure(IActorContext context, bool restartRequested, IActorRef child, Exception cause,
            ChildRestartStats stats, IReadOnlyCollection<ChildRestartStats> children) =>
            base.ProcessFailure(context, restartRequested && restart(context, child, cause), child, cause, stats, children);
    }
}
