namespace ClawKeeper.Actors.Orchestrators;

/// <summary>Sent to the fleet; forwarded to the named orchestrator, which answers <see cref="OrchestratorPong"/>.</summary>
public sealed record PingOrchestrator(string Orchestrator);

/// <summary>An orchestrator is alive and reports its worker pool.</summary>
public sealed record OrchestratorPong(string Orchestrator, int Workers, int BusyWorkers)
{
    public int FreeWorkers => Math.Max(0, Workers - BusyWorkers);
}

/// <summary>The fleet has no orchestrator of that name.</summary>
public sealed record UnknownOrchestrator(string Orchestrator);
