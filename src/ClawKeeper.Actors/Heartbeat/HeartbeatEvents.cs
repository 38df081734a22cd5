using System.Collections.Immutable;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Serialization;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>Persisted by the supervisor. Changing a shape means a new manifest version (see ClawKeeperSerializer).</summary>
public interface IHeartbeatEvent : IClawKeeperMessage;

/// <summary>A heartbeat finished; the report carries the outcome, the new failure count and any alert raised.</summary>
public sealed record HeartbeatRecorded(HeartbeatReport Report) : IHeartbeatEvent;

/// <summary>The heartbeat's row is in <c>agent_runs</c> (it may be written later than the heartbeat, e.g. after an outage).</summary>
public sealed record HeartbeatRunLogged(string HeartbeatId) : IHeartbeatEvent;

/// <summary>The data-integrity checks verified the platform up to these positions.</summary>
public sealed record IntegrityVerified(IntegrityWatermarks Watermarks) : IHeartbeatEvent;

/// <summary>An integrity failure blocked writes to the financial tables (held by the supervisor, even before the database has it).</summary>
public sealed record WriteBlockImposed(string Reason, IReadOnlyList<string> Checks, DateTimeOffset At) : IHeartbeatEvent;

/// <summary>The block is open in the database as <c>write_blocks</c> row <paramref name="BlockId"/>.</summary>
public sealed record WriteBlockApplied(long BlockId) : IHeartbeatEvent;

/// <summary>A super_admin lifted the block (seen in <c>write_blocks</c>).</summary>
public sealed record WriteBlockLifted(long BlockId, string LiftedBy, string Reason, DateTimeOffset At) : IHeartbeatEvent;

/// <summary>The open incidents after a heartbeat (opened, reminded, acknowledged, suppressed, resolved).</summary>
public sealed record IncidentsUpdated(ImmutableDictionary<string, Incident> Incidents) : IHeartbeatEvent;

/// <summary>Notifications persisted before anything is sent (the durable outbox).</summary>
public sealed record NotificationsQueued(IReadOnlyList<QueuedNotification> Notifications) : IHeartbeatEvent;

/// <summary>A channel handed the notification off (SMTP accepted it, Discord answered 2xx).</summary>
public sealed record NotificationDelivered(string NotificationId, string Channel, DateTimeOffset At) : IHeartbeatEvent;

/// <summary>The providers whose circuit breaker is open: since when and how many re-checks (a restart does not reset the clock).</summary>
public sealed record BreakersObserved(ImmutableDictionary<string, Integrations.BreakerObservation> Breakers) : IHeartbeatEvent;

/// <summary>The soft/hard state and flap history of every check after a round (full or retry).</summary>
public sealed record CheckStatesObserved(CheckStates States) : IHeartbeatEvent;
