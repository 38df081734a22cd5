using Npgsql;
using NpgsqlTypes;

namespace ClawKeeper.Platform.Api;

/// <summary>A task as submitted through the API (or taken from the submission buffer).</summary>
/// <param name="AcceptedAt">When the API accepted it: becomes <c>tasks.created_at</c>, so a task buffered during an outage keeps its age.</param>
public sealed record ApiTaskSubmission(
    string Id,
    string TenantId,
    string Orchestrator,
    string Kind,
    string PayloadJson,
    int Priority,
    DateTimeOffset AcceptedAt);

/// <summary>What <c>GET /api/tasks/{id}</c> shows of a <c>tasks</c> row.</summary>
public sealed record ApiTaskView(
    string Id,
    string TenantId,
    string Orchestrator,
    string Kind,
    string Status,
    int Attempts,
    string? LastError,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? CompletedAt);

public enum ApiTaskInsertOutcome
{
    /// <summary>A new row.</summary>
    Created,

    /// <summary>The id existed already for this tenant (an idempotent repeat): nothing written.</summary>
    AlreadyExisted,

    /// <summary>The id is taken by a row this tenant cannot see: nothing written.</summary>
    IdTaken,
}

/// <summary>A write the database refused because writes are blocked (SQLSTATE CK001, migration 0002).</summary>
public sealed class WritesBlockedException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// The API's reads and writes of <c>tasks</c>. Each runs in a transaction <c>SET LOCAL ROLE</c> the
/// application role with <c>app.tenant_id</c> set to the key's tenant, so row-level security decides
/// what the request sees and may write (no tenant filter in the SQL: RLS is the filter).
/// </summary>
public sealed class ApiTaskStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _applicationRole;
    private readonly int _commandTimeoutSeconds;

    /// <param name="applicationRole">A validated role name (e.g. <c>clawkeeper_app</c>); the data source's role must be allowed to SET ROLE to it.</param>
    public ApiTaskStore(NpgsqlDataSource dataSource, string applicationRole, TimeSpan commandTimeout)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        ArgumentException.ThrowIfNullOrWhiteSpace(applicationRole);
        _applicationRole = applicationRole;
        _commandTimeoutSeconds = (int)Math.Clamp(Math.Ceiling(commandTimeout.TotalSeconds), 1, 3600);
    }

    /// <summary>
    /// Npgsql's "The connection pool has been exhausted" (every connection of the pool in use past its
    /// Timeout): the database is busy, not down; callers answer 503 and must not treat it as an outage.
    /// </summary>
    public static bool IsPoolExhausted(Exception ex) =>
        ex is NpgsqlException { InnerException: TimeoutException } && ex.Message.StartsWith("The connection pool has been exhausted", StringComparison.Ordinal);

    /// <summary>
    /// True when <paramref name="ex"/> means the database could not be reached or is going away
    /// (connection refused/reset, timeout, shutdown, too many connections) rather than a refusal of
    /// this statement. A pool that is merely exhausted is not an outage (<see cref="IsPoolExhausted"/>).
    /// </summary>
    public static bool IsUnavailable(Exception ex) => !IsPoolExhausted(ex) && ex switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                                || pg.SqlState is "57P01" or "57P02" or "57P03" or "53300" or "53000",
        NpgsqlException => true,
        TimeoutException => true,
        System.Net.Sockets.SocketException => true,
        IOException => true,
        _ => false,
    };

    private string Quoted => "\"" + _applicationRole.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private async Task<(NpgsqlConnection Connection, NpgsqlTransaction Transaction)> BeginAsTenantAsync(string tenantId, CancellationToken ct)
    {
        var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        try
        {
            var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using var context = new NpgsqlCommand($"SET LOCAL ROLE {Quoted}", connection, transaction);
            context.CommandTimeout = _commandTimeoutSeconds;
            await context.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            context.CommandText = "SELECT set_config('app.tenant_id', $1, true)";
            context.Parameters.AddWithValue(tenantId);
            await context.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return (connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Inserts the task (idempotent by id) as its tenant; throws <see cref="WritesBlockedException"/> for CK001.</summary>
    public async Task<(ApiTaskInsertOutcome Outcome, ApiTaskView? Task)> InsertAsync(ApiTaskSubmission task, CancellationToken ct)
    {
        var (connection, transaction) = await BeginAsTenantAsync(task.TenantId, ct).ConfigureAwait(false);
        await using (connection)
        await using (transaction)
        {
            try
            {
                await using var insert = new NpgsqlCommand("""
                    INSERT INTO tasks (id, tenant_id, orchestrator, kind, payload, priority, status, created_at)
                    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
                    ON CONFLICT (id) DO NOTHING
                    """, connection, transaction);
                insert.CommandTimeout = _commandTimeoutSeconds;
                insert.Parameters.AddWithValue(task.Id);
                insert.Parameters.AddWithValue(task.TenantId);
                insert.Parameters.AddWithValue(task.Orchestrator);
                insert.Parameters.AddWithValue(task.Kind);
                insert.Parameters.Add(new NpgsqlParameter { Value = task.PayloadJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
                insert.Parameters.AddWithValue(task.Priority);
                insert.Parameters.AddWithValue(task.AcceptedAt.ToUniversalTime());
                var inserted = await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                var view = await ReadAsync(connection, transaction, task.Id, ct).ConfigureAwait(false);
                await transaction.CommitAsync(ct).ConfigureAwait(false);
                return inserted == 1 ? (ApiTaskInsertOutcome.Created, view)
                    : view is null ? (ApiTaskInsertOutcome.IdTaken, null)
                    : (ApiTaskInsertOutcome.AlreadyExisted, view);
            }
            catch (PostgresException ex) when (ex.SqlState == "CK001")
            {
                throw new WritesBlockedException(ex.MessageText, ex);
            }
        }
    }

    /// <summary>The task as the tenant sees it under RLS; null when it does not exist or belongs to another tenant.</summary>
    public async Task<ApiTaskView?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        var (connection, transaction) = await BeginAsTenantAsync(tenantId, ct).ConfigureAwait(false);
        await using (connection)
        await using (transaction)
        {
            var view = await ReadAsync(connection, transaction, id, ct).ConfigureAwait(false);
            await transaction.CommitAsync(ct).ConfigureAwait(false);
            return view;
        }
    }

    private async Task<ApiTaskView?> ReadAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string id, CancellationToken ct)
    {
        // Deliberately no tenant predicate: the tenant_isolation policy decides visibility.
        await using var select = new NpgsqlCommand("""
            SELECT id, tenant_id, orchestrator, kind, status, attempts, last_error, created_at, started_at, completed_at
            FROM tasks WHERE id = $1
            """, connection, transaction);
        select.CommandTimeout = _commandTimeoutSeconds;
        select.Parameters.AddWithValue(id);
        await using var reader = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false)) return null;
        return new ApiTaskView(
            reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetInt32(5),
            reader.IsDBNull(6) ? null : reader.GetString(6),
            reader.GetFieldValue<DateTimeOffset>(7),
            reader.IsDBNull(8) ? null : reader.GetFieldValue<DateTimeOffset>(8),
            reader.IsDBNull(9) ? null : reader.GetFieldValue<DateTimeOffset>(9));
    }
}
