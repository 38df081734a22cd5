namespace ClawKeeper.Actors.Heartbeat.Journal;

/// <summary>What a heartbeat says while the journal cannot be written (pure).</summary>
public static class JournalOutage
{
    public const string Action = "journal";

    /// <summary>
    /// Adds the journal problem to the report (an action line) and names it in the consecutive-failure
    /// escalation, so super_admin reads that the database/journal is unreachable.
    /// </summary>
    public static HeartbeatReport Annotate(HeartbeatReport report, DateTimeOffset? since, string? problem, string? spoolPath, int batchesWaiting)
    {
        var detail = $"journal unreachable{(since is { } s ? $" since {s:u}" : "")}{(problem is null ? "" : $": {problem}")}";
        var outcome = spoolPath is null
            ? $"state kept in memory only (no local spool configured); {batchesWaiting} batches waiting for the journal"
            : $"state kept in the local spool {spoolPath}; {batchesWaiting} batches waiting for the journal";
        return report with
        {
            Actions = report.Actions.Append(new ActionReport(Action, detail, outcome)).ToList(),
            Alerts = report.Alerts.Select(a => a.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey && !a.Summary.Contains("journal unreachable", StringComparison.Ordinal)
                ? a with { Summary = $"the heartbeat's database/journal is unreachable ({detail}); {a.Summary}" }
                : a).ToList(),
        };
    }
}
