using System.Collections.Immutable;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Serialization;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>
/// What the heartbeat supervisor must not forget across a restart, a crash or a move of the
/// singleton. Pure: <see cref="Apply"/> is the only way it changes.
/// </summary>
public sealed record HeartbeatState(
    int ConsecutiveFailures,
    long HeartbeatsRecorded,
    HeartbeatReport? Latest,
    ImmutableList<HeartbeatReport> UnloggedRuns,
    ImmutableHashSet<string> OpenAlerts,
    IntegrityWatermarks Watermarks,
    WriteBlockState WriteBlock) : IClawKeeperMessage
{
    /// <summary>Heartbeat rows waiting for the database are kept, but not without bound.</summary>
    public const int MaxUnloggedRuns = 200;

    public static readonly HeartbeatState Empty = new(0, 0, null, ImmutableList<HeartbeatReport>.Empty,
        ImmutableHashSet<string>.Empty, IntegrityWatermarks.None, WriteBlockState.None);

    public DateTimeOffset? LastCompletedAt => Latest?.CompletedAt;

    public bool EscalationRaised => OpenAlerts.Contains(HeartbeatDecisions.ConsecutiveFailuresDedupKey);

    public HeartbeatState Apply(IHeartbeatEvent @event) => @event switch
    {
        HeartbeatRecorded recorded => Record(recorded.Report),
        HeartbeatRunLogged logged => this with { UnloggedRuns = UnloggedRuns.RemoveAll(r => r.Id == logged.HeartbeatId) },
        IntegrityVerified verified => this with { Watermarks = verified.Watermarks },
        WriteBlockImposed imposed => this with { WriteBlock = new WriteBlockState(true, imposed.Reason, imposed.Checks, imposed.At, null) },
        WriteBlockApplied applied => this with { WriteBlock = WriteBlock with { Active = true, BlockId = applied.BlockId } },
        WriteBlockLifted lifted when WriteBlock.BlockId == lifted.BlockId || WriteBlock.BlockId is null => this with { WriteBlock = WriteBlockState.None },
        WriteBlockLifted => this,
        _ => throw new ArgumentOutOfRangeException(nameof(@event), @event.GetType().Name, "unknown heartbeat event"),
    };

    private HeartbeatState Record(HeartbeatReport report)
    {
        var unlogged = report.DryRun ? UnloggedRuns : UnloggedRuns.Add(report);
        if (unlogged.Count > MaxUnloggedRuns) unlogged = unlogged.RemoveRange(0, unlogged.Count - MaxUnloggedRuns);
        return this with
        {
            ConsecutiveFailures = report.ConsecutiveFailures,
            HeartbeatsRecorded = HeartbeatsRecorded + 1,
            Latest = report,
            UnloggedRuns = unlogged,
            OpenAlerts = HeartbeatDecisions.OpenAlertsAfter(OpenAlerts, report),
        };
    }
}
