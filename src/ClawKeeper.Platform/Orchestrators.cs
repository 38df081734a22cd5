namespace ClawKeeper.Platform;

/// <summary>The nine domain-lead orchestrators, as they appear in <c>tasks.orchestrator</c> and
/// <c>agent_runs.agent_id</c>.</summary>
public static class Orchestrators
{
    public const string Cfo = "cfo";
    public const string AccountsPayableLead = "accounts-payable-lead";
    public const string AccountsReceivableLead = "accounts-receivable-lead";
    public const string ReconciliationLead = "reconciliation-lead";
    public const string ComplianceLead = "compliance-lead";
    public const string ReportingLead = "reporting-lead";
    public const string IntegrationLead = "integration-lead";
    public const string DataEtlLead = "data-etl-lead";
    public const string SupportLead = "support-lead";

    public static IReadOnlyList<string> All { get; } =
    [
        Cfo, AccountsPayableLead, AccountsReceivableLead, ReconciliationLead, ComplianceLead,
        ReportingLead, IntegrationLead, DataEtlLead, SupportLead,
    ];
}
