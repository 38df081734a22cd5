using System.Collections.Immutable;
using System.Text.Json.Serialization;
using ClawKeeper.Actors.Alerts;
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
    ImmutableDictionary<string, Incident> Incidents,
    ImmutableDictionary<string, QueuedNotification> Outbox,
    IntegrityWatermarks Watermarks,
    WriteBlockState WriteBlock,
    ImmutableDictionary<string, Integrations.BreakerObservation>? Breakers = null,
    CheckStates? Monitoring = null) : IClawKeeperMessage
{
    /// <summary>Soft/hard state and flap history per check (null in states written before soft states existed).</summary>
    [JsonIgnore]
    public CheckStates Checks => Monitoring ?? CheckStates.Empty;

    /// <summary>Heartbeat rows waiting for the database are kept, but not without bound.</summary>
    public const int MaxUnloggedRuns = 200;

    public static readonly HeartbeatState Empty = new(0, 0, null, ImmutableList<HeartbeatReport>.Empty,
        ImmutableDictionary<string, Incident>.Empty, ImmutableDictionary<string, QueuedNotification>.Empty, IntegrityWatermarks.None, WriteBlockState.None);

    [JsonIgnore]
    public DateTimeOffset? LastCompletedAt => Latest?.CompletedAt;

    [JsonIgnore]
    public ImmutableDictionary<string, Integrations.BreakerObservation> OpenBreakers => Breakers ?? ImmutableDictionary<string, Integrations.BreakerObservation>.Empty;

    /// <summary>Dedup keys of the incidents still open (they are not raised again).</summary>
    [JsonIgnore]
    public ImmutableHashSet<string> OpenAlerts => Incidents.Keys.ToImmutableHashSet();

    [JsonIgnore]
    public bool EscalationRaised => Incidents.ContainsKey(HeartbeatDecisions.ConsecutiveFailuresDedupKey);

    public HeartbeatState Apply(IHeartbeatEvent @event) => @event switch
    {
        HeartbeatRecorded recorded => Record(recorded.Report),
        HeartbeatRunLogged logged => this with { UnloggedRuns = UnloggedRuns.RemoveAll(r => r.Id == logged.HeartbeatId) },
        IntegrityVerified verified => this with { Watermarks = verified.Watermarks },
        WriteBlockImposed imposed => this with { WriteBlock = new WriteBlockState(true, imposed.Reason, imposed.Checks, imposed.At, null) },
        WriteBlockApplied applied => this with { WriteBlock = WriteBlock with { Active = true, BlockId = applied.BlockId } },
        WriteBlockLifted lifted when WriteBlock.BlockId == lifted.BlockId || WriteBlock.BlockId is null => this with { WriteBlock = WriteBlockState.None },
        WriteBlockLifted => this,
        IncidentsUpdated updated => this with { Incidents = updated.Incidents },
        BreakersObserved observed => this with { Breakers = observed.Breakers },
        CheckStatesObserved observed => this with { Monitoring = observed.States },
        NotificationsQueued queued => this with { Outbox = Outbox.SetItems(queued.Notifications.Where(n => !n.PendingChannels.IsEmpty).Select(n => KeyValuePair.Create(n.Notification.Id, n))) },
        NotificationDelivered delivered => Delivered(delivered),
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
        };
    }

    private HeartbeatState Delivered(NotificationDelivered delivered)
    {
        if (!Outbox.TryGetValue(delivered.NotificationId, out var queued)) return this;
        var pending = queued.PendingChannels.Remove(delivered.Channel);
        return this with
        {
            Outbox = pending.IsEmpty ? Outbox.Remove(delivered.NotificationId) : Outbox.SetItem(delivered.NotificationId, queued with { PendingChannels = pending }),
        };
    }
}
