using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.TaskQueue;

/// <summary><c>queue_depth</c>: pending tasks stay below the limit.</summary>
public sealed class QueueDepthCheck(NpgsqlDataSource? platform, TaskQueueSettings settings) : TaskQueueCheck(platform, settings)
{
    public override string Id => "queue_depth";
    protected override string Threshold => $"pending < {Settings.MaxPending}";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, """
            select orchestrator, count(*)::bigint, min(created_at)
            from tasks where status = 'pending'
            group by orchestrator order by count(*) desc, orchestrator
            """);
        var perOrchestrator = new List<(string Orchestrator, long Count, DateTime Oldest)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                perOrchestrator.Add((reader.GetString(0), reader.GetInt64(1), reader.GetDateTime(2)));

        var pending = perOrchestrator.Sum(p => p.Count);
        var observed = $"{pending} pending";
        if (pending == 0) return CheckOutcome.Pass(observed, Threshold, "the queue is empty");
        var oldest = perOrchestrator.Min(p => p.Oldest);
        var breakdown = string.Join(", ", perOrchestrator.Take(Settings.SampleSize).Select(p => $"{p.Orchestrator} {p.Count}"));
        var detail = $"by orchestrator: {breakdown}; oldest pending since {oldest:u}";
        return pending < Settings.MaxPending
            ? CheckOutcome.Pass(observed, Threshold, detail)
            : CheckOutcome.Fail(observed, Threshold, detail);
    }
}
