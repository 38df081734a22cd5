using Npgsql;
using NpgsqlTypes;

namespace ClawKeeper.Platform.Tasks;

/// <summary>
/// The task queue in the platform database's <c>tasks</c> table (migration 0004 adds <c>not_before</c>
/// and the claim indexes). Every write after the claim is fenced on
/// <c>(id, claimed_by, attempts, status in (assigned, running))</c>: once a task was released or claimed
/// again, a late outcome of the earlier attempt writes nothing, so a task is recorded completed at
/// most once and never by two attempts.
/// </summary>
public sealed class PostgresTaskQueue : ITaskQueue
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly TaskRetryPolicy _retry;
    private readonly int _commandTimeoutSeconds;

    /// <param name="dataSource">The platform database, as a role that sees every tenant (claims are cross-tenant).</param>
    /// <param name="commandTimeout">Deadline of one statement (a hung database is a database error, not a hung worker).</param>
    public PostgresTaskQueue(NpgsqlDataSource dataSource, TaskRetryPolicy? retry = null, TimeSpan? commandTimeout = null)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _retry = retry ?? TaskRetryPolicy.Default;
        if (_retry.MaxAttempts < 1) throw new ArgumentOutOfRangeException(nameof(retry), "MaxAttempts must be at least 1");
        _commandTimeoutSeconds = (int)Math.Clamp(Math.Ceiling((commandTimeout ?? TimeSpan.FromSeconds(30)).TotalSeconds), 1, 3600);
    }

    public TaskRetryPolicy Retry => _retry;

    /// <summary>The <c>claimed_by</c> of an orchestrator on a node: <c>&lt;nodeId&gt;/&lt;orchestrator&gt;</c>.</summary>
    public static string ClaimerId(string nodeId, string orchestrator) => $"{nodeId}/{orchestrator}";

    /// <summary>The <c>agent_runs.id</c> of one attempt of a task.</summary>
    public static string RunId(string taskId, int attempt) => $"run-{taskId}-attempt-{attempt}";

    public async Task<string?> WhyCannotClaimAsync(CancellationToken ct = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT current_user::text, row_security_active('tasks')");
        command.CommandTimeout = _commandTimeoutSeconds;
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return reader.GetBoolean(1)
            ? $"the role '{reader.GetString(0)}' is subject to row-level security on tasks and would claim nothing; the orchestrators need a role with BYPASSRLS (or a superuser) on the platform database"
            : null;
    }

    public async Task<IReadOnlyList<ClaimedTask>> ClaimAsync(string orchestrator, string claimedBy, int max, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(orchestrator);
        ArgumentException.ThrowIfNullOrWhiteSpace(claimedBy);
        if (max <= 0) return Array.Empty<ClaimedTask>();

        // One statement: the locking subquery skips rows other claimers hold (SKIP LOCKED) and
        // re-checks status on the latest row version, so two claimers never take the same task.
        await using var command = _dataSource.CreateCommand("""
            WITH picked AS (
                SELECT id
                FROM tasks
                WHERE orchestrator = $1
                  AND status = 'pending'
                  AND (not_before IS NULL OR not_before <= now())
                ORDER BY priority DESC, created_at, id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            UPDATE tasks AS t
            SET status = 'assigned', claimed_by = $3, assigned_at = now(), attempts = t.attempts + 1,
                started_at = NULL, completed_at = NULL, not_before = NULL
            FROM picked
            WHERE t.id = picked.id
            RETURNING t.id, t.tenant_id, t.orchestrator, t.kind, t.payload::text, t.priority, t.attempts,
                      t.created_at, t.assigned_at
            """);
        command.CommandTimeout = _commandTimeoutSeconds;
        command.Parameters.Add(new NpgsqlParameter { Value = orchestrator });
        command.Parameters.Add(new NpgsqlParameter { Value = max });
        command.Parameters.Add(new NpgsqlParameter { Value = claimedBy });

        var claimed = new List<ClaimedTask>();
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                claimed.Add(new ClaimedTask(
                    Id: reader.GetString(0),
                    TenantId: reader.GetString(1),
                    Orchestrator: reader.GetString(2),
                    Kind: reader.GetString(3),
                    PayloadJson: reader.GetString(4),
                    Priority: reader.GetInt32(5),
                    Attempt: reader.GetInt32(6),
                    ClaimedBy: claimedBy,
                    CreatedAt: reader.GetFieldValue<DateTimeOffset>(7),
                    AssignedAt: reader.GetFieldValue<DateTimeOffset>(8)));
            }
        }

        // RETURNING has no order: hand them out in claim order.
        claimed.Sort((a, b) => b.Priority != a.Priority
            ? b.Priority.CompareTo(a.Priority)
            : a.CreatedAt != b.CreatedAt ? a.CreatedAt.CompareTo(b.CreatedAt) : string.CompareOrdinal(a.Id, b.Id));
        return claimed;
    }

    public async Task<bool> MarkRunningAsync(ClaimedTask task, CancellationToken ct = default)
    {
        var updated = await InTenantTransactionAsync(task.TenantId, async batch =>
        {
            await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return batch.BatchCommands[1].RecordsAffected;
        }, """
            UPDATE tasks SET status = 'running', started_at = now()
            WHERE id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'assigned'
            """, ct, task.Id, task.ClaimedBy, task.Attempt).ConfigureAwait(false);
        return updated == 1;
    }

    public async Task<bool> CompleteAsync(ClaimedTask task, TaskRunRecord run, CancellationToken ct = default)
    {
        run = run.Normalised();
        // The task and its run in one statement: no run without the transition, no transition without the run.
        var recorded = await InTenantTransactionAsync(task.TenantId, async batch =>
        {
            await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return batch.BatchCommands[1].RecordsAffected;
        }, """
            WITH done AS (
                UPDATE tasks
                SET status = 'completed', completed_at = now(), started_at = coalesce(started_at, now()), not_before = NULL
                WHERE id = $1 AND claimed_by = $2 AND attempts = $3 AND status IN ('assigned', 'running')
                RETURNING id, tenant_id, orchestrator, started_at, completed_at
            )
            INSERT INTO agent_runs (id, tenant_id, agent_id, task_id, status, started_at, completed_at,
                                    duration_ms, tokens_used, cost, output)
            SELECT $4, done.tenant_id, done.orchestrator, done.id, 'completed', done.started_at, done.completed_at,
                   $5, $6, $7, $8::jsonb
            FROM done
            """, ct, task.Id, task.ClaimedBy, task.Attempt, RunId(task.Id, task.Attempt),
            run.DurationMs, run.TokensUsed, run.Cost, Json(run.OutputJson)).ConfigureAwait(false);
        return recorded == 1;
    }

    public async Task<FailureRecorded> FailAsync(ClaimedTask task, TaskRunRecord run, string error, bool retryable, CancellationToken ct = default)
    {
        run = run.Normalised();
        error = string.IsNullOrWhiteSpace(error) ? "failed (no error given)" : error;
        var final = !retryable || task.Attempt >= _retry.MaxAttempts;
        var delay = final ? TimeSpan.Zero : _retry.Delay(task.Attempt);
        var output = run.OutputJson ?? System.Text.Json.JsonSerializer.Serialize(new { error });

        return await InTenantTransactionAsync(task.TenantId, async batch =>
        {
            await using var reader = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.NextResultAsync(ct).ConfigureAwait(false); // past set_config
            if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                return new FailureRecorded(FailureDisposition.NotOwned, task.Attempt, null);
            return final
                ? new FailureRecorded(FailureDisposition.Failed, task.Attempt, null)
                : new FailureRecorded(FailureDisposition.RetryScheduled, task.Attempt, reader.GetFieldValue<DateTimeOffset>(0));
        }, """
            WITH failed AS (
                UPDATE tasks AS t
                SET status       = CASE WHEN $4 THEN 'failed' ELSE 'pending' END,
                    last_error   = $5,
                    completed_at = CASE WHEN $4 THEN now() END,
                    not_before   = CASE WHEN $4 THEN NULL ELSE now() + $6 END,
                    claimed_by   = CASE WHEN $4 THEN t.claimed_by END,
                    assigned_at  = CASE WHEN $4 THEN t.assigned_at END,
                    started_at   = CASE WHEN $4 THEN coalesce(t.started_at, now()) END
                WHERE t.id = $1 AND t.claimed_by = $2 AND t.attempts = $3 AND t.status IN ('assigned', 'running')
                RETURNING t.id, t.tenant_id, t.orchestrator, t.not_before
            ),
            prior AS (
                -- when the attempt started, as the row was before the update (one snapshot for the whole statement)
                SELECT coalesce(started_at, assigned_at, now()) AS started_at FROM tasks WHERE id = $1
            ),
            run AS (
                INSERT INTO agent_runs (id, tenant_id, agent_id, task_id, status, started_at, completed_at,
                                        duration_ms, tokens_used, cost, output)
                SELECT $7, failed.tenant_id, failed.orchestrator, failed.id, 'failed', prior.started_at, now(),
                       $8, $9, $10, $11::jsonb
                FROM failed, prior
                RETURNING 1
            )
            SELECT failed.not_before FROM failed
            """, ct, task.Id, task.ClaimedBy, task.Attempt, final, error, delay, RunId(task.Id, task.Attempt),
            run.DurationMs, run.TokensUsed, run.Cost, Json(output)).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<string>> ReleaseAsync(string claimedBy, string reason, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(claimedBy);
        return ReleaseWhereAsync("claimed_by = $1", claimedBy, reason, ct);
    }

    public Task<IReadOnlyList<string>> ReleaseNodeAsync(string nodeId, string reason, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeId);
        return ReleaseWhereAsync("left(claimed_by, length($1) + 1) = $1 || '/'", nodeId, reason, ct);
    }

    public Task<IReadOnlyList<string>> ReleaseStaleAsync(TimeSpan heldLongerThan, string reason, CancellationToken ct = default)
    {
        if (heldLongerThan <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(heldLongerThan), "must be positive");
        return ReleaseWhereAsync("coalesce(started_at, assigned_at, created_at) < now() - $1", heldLongerThan, reason, ct);
    }

    private async Task<IReadOnlyList<string>> ReleaseWhereAsync(string claimerCondition, object claimer, string reason, CancellationToken ct)
    {
        // attempts stays as it is: it counts claims, and the interrupted attempt was one.
        await using var command = _dataSource.CreateCommand($"""
            UPDATE tasks
            SET status = 'pending', claimed_by = NULL, assigned_at = NULL, started_at = NULL, not_before = NULL,
                last_error = 'released: ' || $2
            WHERE {claimerCondition} AND status IN ('assigned', 'running')
            RETURNING id
            """);
        command.CommandTimeout = _commandTimeoutSeconds;
        command.Parameters.Add(Parameter(claimer));
        command.Parameters.Add(new NpgsqlParameter { Value = reason });
        var released = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false)) released.Add(reader.GetString(0));
        released.Sort(StringComparer.Ordinal);
        return released;
    }

    /// <summary>
    /// Runs <paramref name="sql"/> in a transaction whose <c>app.tenant_id</c> is the task's tenant
    /// (<c>set_config(..., true)</c>: transaction-local, so a pooled connection never carries it over).
    /// One batch (set_config, then the statement: batch command 1) and the commit: two round trips.
    /// </summary>
    private async Task<T> InTenantTransactionAsync<T>(
        string tenantId, Func<NpgsqlBatch, Task<T>> execute, string sql, CancellationToken ct, params object?[] parameters)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection, transaction) { Timeout = _commandTimeoutSeconds };
        var tenant = new NpgsqlBatchCommand("SELECT set_config('app.tenant_id', $1, true)");
        tenant.Parameters.Add(new NpgsqlParameter { Value = tenantId });
        batch.BatchCommands.Add(tenant);
        var statement = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters) statement.Parameters.Add(Parameter(parameter));
        batch.BatchCommands.Add(statement);

        var result = await execute(batch).ConfigureAwait(false);
        await transaction.CommitAsync(ct).ConfigureAwait(false);
        return result;
    }

    private static NpgsqlParameter Json(string? json) =>
        new() { Value = (object?)json ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Parameter(object? value) => value switch
    {
        NpgsqlParameter parameter => parameter,
        TimeSpan span => new NpgsqlParameter { Value = span, NpgsqlDbType = NpgsqlDbType.Interval },
        _ => new NpgsqlParameter { Value = value ?? DBNull.Value },
    };
}
