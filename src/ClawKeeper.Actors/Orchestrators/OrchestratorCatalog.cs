namespace ClawKeeper.Actors.Orchestrators;

/// <summary>The nine domain-lead orchestrators of ClawKeeper (their names are actor names too).</summary>
public static class OrchestratorCatalog
{
    public static readonly IReadOnlyList<string> Names = new[]
    {
        "cfo",
        "accounts-payable-lead",
        "accounts-receivable-lead",
        "reconciliation-lead",
        "compliance-lead",
        "reporting-lead",
        "integration-lead",
        "data-etl-lead",
        "support-lead",
    };
}

/// <summary>An orchestrator and the size of its worker pool.</summary>
public sealed record OrchestratorDefinition(string Name, int Workers);
