namespace ClawKeeper.Actors.Orchestrators;

/// <summary>ActorRegistry key of this node's orchestrator fleet (<c>/user/fleet</c>).</summary>
public sealed class OrchestratorFleetKey;
