using ClawKeeper.Actors.Hosting;
using ClawKeeper.Platform.Api;
using Microsoft.Data.Sqlite;

namespace ClawKeeper.Host.Api;

public enum BufferAddOutcome
{
    Added,

    /// <summary>A task with this id is already buffered (an idempotent repeat).</summary>
    AlreadyBuffered,

    /// <summary>The buffer holds its capacity: nothing was added.</summary>
    Full,
}

/// <summary>
/// The durable, bounded buffer of tasks the API accepted while the platform database was
/// unreachable: a local SQLite file (WAL, <c>synchronous = FULL</c>, so an accepted task survives a
/// crash of the process). A task leaves the buffer only after the flusher wrote it to <c>tasks</c>
/// (idempotent by id), so a crash between the two writes it once, not twice or never.
/// </summary>
public sealed class SubmissionBuffer : IDisposable
{
    private readonly string _connectionString;
    private readonly int _capacity;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public SubmissionBuffer(string path, int capacity)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity));
        var full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        Path = full;
        _capacity = capacity;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = full, Pooling = true }.ToString();
        using var connection = Open();
        DurableSqlite.Execute(connection, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS submissions (
                seq           INTEGER PRIMARY KEY AUTOINCREMENT,
                id            TEXT    NOT NULL UNIQUE,
                tenant_id     TEXT    NOT NULL,
                orchestrator  TEXT    NOT NULL,
                kind          TEXT    NOT NULL,
                payload       TEXT    NOT NULL,
                priority      INTEGER NOT NULL,
                accepted_at   TEXT    NOT NULL
            );
            CREATE TABLE IF NOT EXISTS rejected_submissions (
                id            TEXT    NOT NULL PRIMARY KEY,
                tenant_id     TEXT    NOT NULL,
                orchestrator  TEXT    NOT NULL,
                kind          TEXT    NOT NULL,
                payload       TEXT    NOT NULL,
                priority      INTEGER NOT NULL,
                accepted_at   TEXT    NOT NULL,
                rejected_at   TEXT    NOT NULL,
                reason        TEXT    NOT NULL
            );
            """);
    }

    public string Path { get; }

    public int Capacity => _capacity;

    private SqliteConnection Open() => DurableSqlite.Open(_connectionString);

    public async Task<BufferAddOutcome> AddAsync(ApiTaskSubmission task, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var transaction = connection.BeginTransaction();
            using (var exists = connection.CreateCommand())
            {
                exists.Transaction = transaction;
                exists.CommandText = "SELECT count(*) FROM submissions WHERE id = $id";
                exists.Parameters.AddWithValue("$id", task.Id);
                if (Convert.ToInt64(exists.ExecuteScalar()) > 0) return BufferAddOutcome.AlreadyBuffered;
            }
            using (var count = connection.CreateCommand())
            {
                count.Transaction = transaction;
                count.CommandText = "SELECT count(*) FROM submissions";
                if (Convert.ToInt64(count.ExecuteScalar()) >= _capacity) return BufferAddOutcome.Full;
            }
            using (var insert = connection.CreateCommand())
            {
                insert.Transaction = transaction;
                insert.CommandText = """
                    INSERT INTO submissions (id, tenant_id, orchestrator, kind, payload, priority, accepted_at)
                    VALUES ($id, $tenant, $orchestrator, $kind, $payload, $priority, $accepted)
                    """;
                insert.Parameters.AddWithValue("$id", task.Id);
                insert.Parameters.AddWithValue("$tenant", task.TenantId);
                insert.Parameters.AddWithValue("$orchestrator", task.Orchestrator);
                insert.Parameters.AddWithValue("$kind", task.Kind);
                insert.Parameters.AddWithValue("$payload", task.PayloadJson);
                insert.Parameters.AddWithValue("$priority", task.Priority);
                insert.Parameters.AddWithValue("$accepted", task.AcceptedAt.ToUniversalTime().ToString("O"));
                insert.ExecuteNonQuery();
            }
            transaction.Commit();
            return BufferAddOutcome.Added;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The buffered task of <paramref name="tenantId"/> with this id, if any.</summary>
    public async Task<ApiTaskSubmission?> FindAsync(string tenantId, string id, CancellationToken ct) =>
        (await QueryAsync("WHERE id = $id AND tenant_id = $tenant", 1, ct, ("$id", id), ("$tenant", tenantId)).ConfigureAwait(false)).FirstOrDefault();

    /// <summary>The oldest <paramref name="max"/> buffered tasks, in the order they were accepted.</summary>
    public Task<IReadOnlyList<ApiTaskSubmission>> OldestAsync(int max, CancellationToken ct) => QueryAsync("", max, ct);

    public async Task<int> CountAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var count = connection.CreateCommand();
            count.CommandText = "SELECT count(*) FROM submissions";
            return Convert.ToInt32(count.ExecuteScalar());
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Removes a task the flusher wrote to the database.</summary>
    public async Task RemoveAsync(string id, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var delete = connection.CreateCommand();
            delete.CommandText = "DELETE FROM submissions WHERE id = $id";
            delete.Parameters.AddWithValue("$id", id);
            delete.ExecuteNonQuery();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Moves a task the database refuses for good (e.g. its tenant no longer exists) out of the way,
    /// into <c>rejected_submissions</c> of the same file with the reason: kept for an operator, not retried.
    /// </summary>
    public async Task RejectAsync(string id, string reason, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var transaction = connection.BeginTransaction();
            using (var move = connection.CreateCommand())
            {
                move.Transaction = transaction;
                move.CommandText = """
                    INSERT OR REPLACE INTO rejected_submissions (id, tenant_id, orchestrator, kind, payload, priority, accepted_at, rejected_at, reason)
                    SELECT id, tenant_id, orchestrator, kind, payload, priority, accepted_at, $at, $reason FROM submissions WHERE id = $id
                    """;
                move.Parameters.AddWithValue("$id", id);
                move.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.ToString("O"));
                move.Parameters.AddWithValue("$reason", reason);
                move.ExecuteNonQuery();
            }
            using (var delete = connection.CreateCommand())
            {
                delete.Transaction = transaction;
                delete.CommandText = "DELETE FROM submissions WHERE id = $id";
                delete.Parameters.AddWithValue("$id", id);
                delete.ExecuteNonQuery();
            }
            transaction.Commit();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>How many submissions were set aside by <see cref="RejectAsync"/>.</summary>
    public async Task<int> RejectedCountAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var count = connection.CreateCommand();
            count.CommandText = "SELECT count(*) FROM rejected_submissions";
            return Convert.ToInt32(count.ExecuteScalar());
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<IReadOnlyList<ApiTaskSubmission>> QueryAsync(string where, int max, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var connection = Open();
            using var select = connection.CreateCommand();
            select.CommandText = $"SELECT id, tenant_id, orchestrator, kind, payload, priority, accepted_at FROM submissions {where} ORDER BY seq LIMIT $max";
            select.Parameters.AddWithValue("$max", max);
            foreach (var (name, value) in parameters) select.Parameters.AddWithValue(name, value);
            using var reader = select.ExecuteReader();
            var tasks = new List<ApiTaskSubmission>();
            while (reader.Read())
                tasks.Add(new ApiTaskSubmission(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                    reader.GetInt32(5), DateTimeOffset.Parse(reader.GetString(6), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind)));
            return tasks;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _gate.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
    }
}
