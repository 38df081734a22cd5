namespace ClawKeeper.Actors.Heartbeat;

/// <summary>ActorRegistry key of the heartbeat supervisor (the singleton proxy on a node, the actor itself in a one-shot check).</summary>
public sealed class HeartbeatSupervisorKey;
