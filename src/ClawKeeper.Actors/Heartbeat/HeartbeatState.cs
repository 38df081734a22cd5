using System.Collections.Immutable;
using ClawKeeper.Actors.Serialization;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>
/// What the heartbeat supervisor must not forget across a restart, a crash or a move of the
/// singleton. Pure: <see cref="Apply"/> is the only way it changes.
/// </summary>
public sealed record HeartbeatState(
    int ConsecutiveFailures,
    bool EscalationRaised,
    long HeartbeatsRecorded,
    HeartbeatReport? Latest,
    ImmutableList<HeartbeatReport> UnloggedRuns) : IClawKeeperMessage
{
    /// <summary>Heartbeat rows waiting for the database are kept, but not without bound.</summary>
    public const int MaxUnloggedRuns = 200;

    public static readonly HeartbeatState Empty = new(0, false, 0, null, ImmutableList<HeartbeatReport>.Empty);

    public DateTimeOffset? LastCompletedAt => Latest?.CompletedAt;

    public HeartbeatState Apply(IHeartbeatEvent @event) => @event switch
    {
        HeartbeatRecorded recorded => Record(recorded.Report),
        HeartbeatRunLogged logged => this with { UnloggedRuns = UnloggedRuns.RemoveAll(r => r.Id == logged.HeartbeatId) },
        _ => throw new ArgumentOutOfRangeException(nameof(@event), @event.GetType().Name, "unknown heartbeat event"),
    };

    private HeartbeatState Record(HeartbeatReport report)
    {
        var unlogged = UnloggedRuns.Add(report);
        if (unlogged.Count > MaxUnloggedRuns) unlogged = unlogged.RemoveRange(0, unlogged.Count - MaxUnloggedRuns);
        var escalated = report.Status == HeartbeatStatus.Fail
            && (EscalationRaised || report.Alerts.Any(a => a.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey));
        return this with
        {
            ConsecutiveFailures = report.ConsecutiveFailures,
            EscalationRaised = escalated,
            HeartbeatsRecorded = HeartbeatsRecorded + 1,
            Latest = report,
            UnloggedRuns = unlogged,
        };
    }
}
