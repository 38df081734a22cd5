using ClawKeeper.Actors.Serialization;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>
/// Runs one heartbeat now; the sender gets <see cref="HeartbeatCompleted"/>. Joins a heartbeat
/// already in flight. <paramref name="FullVerification"/> re-verifies everything instead of
/// reading only what is new since the last verified positions.
/// </summary>
public sealed record RunHeartbeatNow(bool FullVerification = false) : IClawKeeperMessage
{
    public static readonly RunHeartbeatNow Instance = new();
}

/// <summary>Answer to <see cref="RunHeartbeatNow"/>, also published on the event stream after each heartbeat.</summary>
public sealed record HeartbeatCompleted(HeartbeatReport Report) : IClawKeeperMessage;

/// <summary>Asks for the supervisor's persisted state; answered with <see cref="HeartbeatState"/>.</summary>
public sealed record GetHeartbeatState : IClawKeeperMessage
{
    public static readonly GetHeartbeatState Instance = new();
}

/// <summary>
/// A super_admin lifted the write block (<c>POST /writes/unblock</c> on the ops port): bring the
/// supervisor's persisted block in line with <c>write_blocks</c> now rather than at the next round
/// (the lift is recorded as <see cref="WriteBlockLifted"/>; nothing is imposed: a failure that
/// persists is blocked again by the next round, as for a lift from the CLI). Not answered.
/// </summary>
public sealed record ReconcileWriteBlock : IClawKeeperMessage
{
    public static readonly ReconcileWriteBlock Instance = new();
}

/// <summary>Timer message: time for a heartbeat.</summary>
internal sealed record HeartbeatTick
{
    public static readonly HeartbeatTick Instance = new();
}

/// <summary>Timer message: re-run the checks in soft state (retry cadence).</summary>
internal sealed record RetrySoftChecks
{
    public static readonly RetrySoftChecks Instance = new();
}

/// <summary>Timer message: re-check the open breakers once their reset timeout has passed.</summary>
internal sealed record ReprobeBreakers
{
    public static readonly ReprobeBreakers Instance = new();
}

/// <summary>Timer message: the groups of heartbeat <paramref name="HeartbeatId"/> ran out of time.</summary>
internal sealed record RoundDeadline(string HeartbeatId);

/// <summary>The write-block guard finished for a closed round; the round completes with it.</summary>
internal sealed record RoundClosed(
    HeartbeatRound Round,
    HeartbeatReport Report,
    WriteBlockOutcome WriteBlocks,
    IReadOnlyList<ClawKeeper.Platform.Alerts.AlertControl> Controls,
    Integrations.BreakerAssessment? Breakers,
    CheckStates States);

/// <summary>The heartbeat rows waiting for <c>agent_runs</c> were written (or not).</summary>
internal sealed record RunLogsWritten(IReadOnlyList<string> Written, string? Error);

/// <summary>Timer message: a write block held while the database was unreachable is applied as soon as it returns.</summary>
internal sealed record RetryWriteBlock
{
    public static readonly RetryWriteBlock Instance = new();
}

/// <summary>The guard ran outside a round (re-applying a held block).</summary>
internal sealed record WriteBlockReconciled(WriteBlockOutcome Outcome);

/// <summary>Timer message: try the unwritten heartbeat rows again.</summary>
internal sealed record RetryRunLogs
{
    public static readonly RetryRunLogs Instance = new();
}
