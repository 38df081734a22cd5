namespace ClawKeeper.Actors.Heartbeat.Journal;

/// <summary>Pure decisions about the spool's batches.</summary>
public static class SpoolDecisions
{
    /// <summary>
    /// The journal's latest heartbeat when it is newer than every heartbeat in <paramref name="pending"/> (another
    /// node held the singleton after this spool was written, so replaying them would roll the state back), else null.
    /// Batches without a heartbeat (deliveries, agent_runs confirmations) are never stale on their own.
    /// </summary>
    public static DateTimeOffset? IsStale(IReadOnlyList<SpooledBatch> pending, HeartbeatState journal)
    {
        if (journal.Latest is not { } latest) return null;
        var spooled = pending.SelectMany(b => b.Events).OfType<HeartbeatRecorded>().Select(r => r.Report.CompletedAt).ToList();
        if (spooled.Count == 0) return null;
        return latest.CompletedAt > spooled.Max() ? latest.CompletedAt : null;
    }
}
