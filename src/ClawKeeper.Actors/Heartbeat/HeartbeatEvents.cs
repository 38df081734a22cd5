using ClawKeeper.Actors.Serialization;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>Persisted by the supervisor. Changing a shape means a new manifest version (see ClawKeeperSerializer).</summary>
public interface IHeartbeatEvent : IClawKeeperMessage;

/// <summary>A heartbeat finished; the report carries the outcome, the new failure count and any alert raised.</summary>
public sealed record HeartbeatRecorded(HeartbeatReport Report) : IHeartbeatEvent;

/// <summary>The heartbeat's row is in <c>agent_runs</c> (it may be written later than the heartbeat, e.g. after an outage).</summary>
public sealed record HeartbeatRunLogged(string HeartbeatId) : IHeartbeatEvent;
