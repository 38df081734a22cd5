using Npgsql;
using NpgsqlTypes;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>Where each heartbeat is logged as a run (ARCHITECTURE.md §1: a row in <c>agent_runs</c>).</summary>
public interface IHeartbeatRunLog
{
    /// <summary>Writes the rows in order; idempotent per heartbeat id. Returns the ids written.</summary>
    Task<IReadOnlyList<string>> RecordAsync(IReadOnlyList<HeartbeatReport> reports, CancellationToken cancellationToken);
}

/// <summary>
/// Inserts <c>agent_runs(tenant_id 'system', agent_id 'clawkeeper', task_id 'heartbeat-{timestamp}')</c>
/// with the full report as <c>output</c>. A row already present is left alone, so a retry after an
/// outage never writes a heartbeat twice.
/// </summary>
public sealed class PlatformHeartbeatRunLog : IHeartbeatRunLog
{
    private readonly NpgsqlDataSource _platform;

    public PlatformHeartbeatRunLog(NpgsqlDataSource platform) => _platform = platform;

    public async Task<IReadOnlyList<string>> RecordAsync(IReadOnlyList<HeartbeatReport> reports, CancellationToken cancellationToken)
    {
        var written = new List<string>();
        if (reports.Count == 0) return written;
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var report in reports)
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (var context = new NpgsqlCommand("select set_config('app.tenant_id', 'system', true)", connection, transaction))
                await context.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await using (var insert = new NpgsqlCommand("""
                insert into agent_runs (id, tenant_id, agent_id, task_id, status, started_at, completed_at, duration_ms, tokens_used, cost, output)
                values (@id, 'system', 'clawkeeper', @id, @status, @started_at, @completed_at, @duration_ms, 0, 0, @output)
                on conflict (id) do nothing
                """, connection, transaction))
            {
                insert.Parameters.AddWithValue("id", report.Id);
                insert.Parameters.AddWithValue("status", report.Status == HeartbeatStatus.Pass ? "completed" : "failed");
                insert.Parameters.AddWithValue("started_at", report.StartedAt.UtcDateTime);
                insert.Parameters.AddWithValue("completed_at", report.CompletedAt.UtcDateTime);
                insert.Parameters.AddWithValue("duration_ms", report.DurationMs);
                insert.Parameters.AddWithValue("output", NpgsqlDbType.Jsonb, report.ToJson());
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            written.Add(report.Id);
        }
        return written;
    }
}
