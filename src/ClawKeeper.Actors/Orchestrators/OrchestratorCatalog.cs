namespace ClawKeeper.Actors.Orchestrators;

/// <summary>The nine domain-lead orchestrators of ClawKeeper (their names are actor names too).</summary>
public static class OrchestratorCatalog
{
    /// <summary>The names as the platform stores them (<c>tasks.orchestrator</c>); one list for both.</summary>
    public static IReadOnlyList<string> Names => Platform.Orchestrators.All;
}

/// <summary>An orchestrator and the size of its worker pool.</summary>
public sealed record OrchestratorDefinition(string Name, int Workers);
