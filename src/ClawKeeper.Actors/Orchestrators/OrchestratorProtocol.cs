using ClawKeeper.Actors.Serialization;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>Sent to the fleet; forwarded to the named orchestrator, which answers <see cref="OrchestratorPong"/>.</summary>
public sealed record PingOrchestrator(string Orchestrator) : IClawKeeperMessage;

/// <summary>An orchestrator is alive and reports its worker pool (<paramref name="BusyWorkers"/> = attempts in flight).</summary>
public sealed record OrchestratorPong(string Orchestrator, int Workers, int BusyWorkers) : IClawKeeperMessage
{
    public int FreeWorkers => Math.Max(0, Workers - BusyWorkers);
}

/// <summary>The fleet has no orchestrator of that name.</summary>
public sealed record UnknownOrchestrator(string Orchestrator) : IClawKeeperMessage;

/// <summary>
/// The answer of the fleet, instead of a pong, while an orchestrator that crashed repeatedly waits
/// out its restart backoff (its tasks are already back in the queue).
/// </summary>
public sealed record OrchestratorRestarting(string Orchestrator, int Crashes, DateTimeOffset RestartAt) : IClawKeeperMessage;

/// <summary>Sent to the fleet; forwarded to the named orchestrator, which answers <see cref="OrchestratorStatus"/>.</summary>
public sealed record GetOrchestratorStatus(string Orchestrator);

public enum OrchestratorMode
{
    /// <summary>Claims nothing (the fleet has no queue, or claiming is off: <c>check --once</c>).</summary>
    Observing,

    /// <summary>Just started: releasing what an earlier incarnation held, before claiming.</summary>
    Recovering,

    /// <summary>Working the queue.</summary>
    Claiming,

    /// <summary>The database failed: not claiming until the backoff has passed.</summary>
    DatabaseBackoff,
}

/// <summary>
/// An orchestrator's state. Counters are per incarnation (a restart starts them at zero);
/// <paramref name="Incarnation"/> counts starts of this orchestrator in its fleet (1 = never restarted).
/// </summary>
public sealed record OrchestratorStatus(
    string Orchestrator,
    string ClaimedBy,
    int Workers,
    int BusyWorkers,
    OrchestratorMode Mode,
    int Incarnation,
    long Completed,
    long RetriesScheduled,
    long Failed,
    long Discarded,
    int ConsecutiveDatabaseFailures,
    long DatabaseErrors,
    string? LastDatabaseError);

/// <summary>
/// Sent by the fleet to its parent when an orchestrator crashed <paramref name="Crashes"/> times within
/// <paramref name="Window"/> (the configured escalate-after), once per streak: the parent (or the configured
/// target) turns it into an alert. Also published on the event stream.
/// </summary>
public sealed record OrchestratorEscalation(string Orchestrator, int Crashes, TimeSpan Window, string LastError, TimeSpan NextRestartIn) : IClawKeeperMessage;

/// <summary>
/// Published on the ActorSystem's event stream when an orchestrator's tasks went back to the queue
/// (after a crash or stop, or leftovers found at start). <paramref name="Timestamp"/> is
/// <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> right after the release committed.
/// </summary>
public sealed record OrchestratorTasksReleased(string Orchestrator, string ClaimedBy, IReadOnlyList<string> TaskIds, string Reason, long Timestamp);

/// <summary>
/// Published on the event stream when a fleet's sweep put back tasks held for longer than
/// <paramref name="HeldLongerThan"/> by a claimer that never released them (a node that died).
/// </summary>
public sealed record StaleTasksReleased(IReadOnlyList<string> TaskIds, TimeSpan HeldLongerThan);

/// <summary>
/// Asks the fleet to restart orchestrators that stopped answering pings (hung, not crashed): the hung
/// incarnation is abandoned (its running attempts cancelled, its tasks released through the usual
/// release path) and a fresh one starts at once — or after the restart backoff when it keeps failing.
/// Answered with <see cref="OrchestratorsRestarted"/>. Crosses the cluster (the fleet will run on every node).
/// </summary>
public sealed record RestartOrchestrators(IReadOnlyList<string> Orchestrators, string Reason) : IClawKeeperMessage;

/// <summary>What the fleet did for each orchestrator of a <see cref="RestartOrchestrators"/>.</summary>
public sealed record OrchestratorsRestarted(IReadOnlyList<OrchestratorRestartOutcome> Outcomes) : IClawKeeperMessage;

/// <summary><paramref name="Restarted"/>: a fresh incarnation runs now (false: unknown, already restarting, or backing off — see <paramref name="Outcome"/>).</summary>
public sealed record OrchestratorRestartOutcome(string Orchestrator, bool Restarted, string Outcome);
