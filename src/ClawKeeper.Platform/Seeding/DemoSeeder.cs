using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace ClawKeeper.Platform.Seeding;

/// <summary>What <see cref="DemoSeeder.SeedAsync"/> wrote: counts of the rows created by this call
/// (all zero when <paramref name="AlreadySeeded"/>).</summary>
public sealed record SeedResult(bool AlreadySeeded, int Tenants, int Tasks, int AuditEntries, int JournalLines);

/// <summary>
/// Seeds a small, consistent demo platform on which every heartbeat check passes: four tenants
/// with balanced books and intact audit chains, a healthy task queue relative to now(), valid
/// API keys, active integrations with recent successful syncs, no recent security events.
/// Idempotent: tenants that already exist are left untouched. Works as superuser and as the
/// (non-superuser) owner of the tables under FORCE ROW LEVEL SECURITY: each tenant is written in
/// its own transaction with <c>app.tenant_id</c> set to it.
/// </summary>
public static class DemoSeeder
{
    /// <summary>Transaction-scoped advisory lock that serialises concurrent seeders.</summary>
    public const long AdvisoryLockKey = 0x436C_61774B_0002;

    private const string SeedActor = "system:demo-seed";
    private const int Day = 86_400;

    public static IReadOnlyList<DemoTenant> Tenants => DemoPlatformPlan.Tenants;

    public static async Task<SeedResult> SeedAsync(string connectionString, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var tasksByTenant = DemoPlatformPlan.Tasks().ToLookup(task => task.TenantId);

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);

        int tenants = 0, tasks = 0, auditEntries = 0, journalLines = 0;
        for (var index = 0; index < DemoPlatformPlan.Tenants.Count; index++)
        {
            var tenant = DemoPlatformPlan.Tenants[index];
            await using var transaction = await connection.BeginTransactionAsync(ct);

            await using (var scope = new NpgsqlCommand(
                "SELECT set_config('app.tenant_id', $1, true), pg_advisory_xact_lock($2)", connection, transaction))
            {
                scope.Parameters.Add(new NpgsqlParameter { Value = tenant.Id });
                scope.Parameters.Add(new NpgsqlParameter { Value = AdvisoryLockKey });
                await scope.ExecuteNonQueryAsync(ct);
            }

            await using (var exists = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)", connection, transaction))
            {
                exists.Parameters.Add(new NpgsqlParameter { Value = tenant.Id });
                if ((bool)(await exists.ExecuteScalarAsync(ct))!)
                {
                    await transaction.RollbackAsync(ct);
                    continue;
                }
            }

            var batch = new TenantSeedBatch(connection, transaction);
            var written = WriteTenant(batch, tenant, index, tasksByTenant[tenant.Id].ToList());
            await batch.ExecuteAsync(ct);
            await transaction.CommitAsync(ct);

            tenants++;
            tasks += written.Tasks;
            auditEntries += written.AuditEntries;
            journalLines += written.JournalLines;
        }

        return new SeedResult(tenants == 0, tenants, tasks, auditEntries, journalLines);
    }

    private sealed record TenantCounts(int Tasks, int AuditEntries, int JournalLines);

    private static TenantCounts WriteTenant(TenantSeedBatch batch, DemoTenant tenant, int tenantIndex, IReadOnlyList<DemoTask> tasks)
    {
        var audit = new List<DemoAuditEntry>();

        batch.Add(
            $"INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, 'active', {Ago(3)})",
            tenant.Id, tenant.Name, 120 * Day);
        audit.Add(new DemoAuditEntry(120 * Day, SeedActor, "tenant.created", "tenant", tenant.Id,
            Json(new { name = tenant.Name })));

        // Chart of accounts
        foreach (var account in DemoPlatformPlan.ChartOfAccounts)
        {
            batch.Add(
                $"INSERT INTO ledger_accounts (id, tenant_id, code, name, type, created_at) VALUES ($1, $2, $3, $4, $5, {Ago(6)})",
                DemoPlatformPlan.AccountId(tenant.Id, account.Code), tenant.Id, account.Code, account.Name, account.Type,
                120 * Day - 3600);
        }

        audit.Add(new DemoAuditEntry(120 * Day - 3600, SeedActor, "chart_of_accounts.created", "tenant", tenant.Id,
            Json(new { accounts = DemoPlatformPlan.ChartOfAccounts.Select(account => account.Code).ToArray() })));

        // Books: balanced double entries, each audited.
        var journalLines = 0;
        foreach (var entry in DemoPlatformPlan.JournalEntries(tenant))
        {
            long postedAgo = entry.DaysAgo * Day - 9 * 3600;
            batch.Add(
                $"INSERT INTO journal_entries (id, tenant_id, posted_at, description, created_at) VALUES ($1, $2, {Ago(3)}, $4, {Ago(3)})",
                entry.Id, tenant.Id, postedAgo, entry.Description);
            foreach (var line in entry.Lines)
            {
                batch.Add(
                    "INSERT INTO journal_lines (tenant_id, entry_id, account_id, debit_cents, credit_cents) VALUES ($1, $2, $3, $4, $5)",
                    tenant.Id, entry.Id, DemoPlatformPlan.AccountId(tenant.Id, line.AccountCode), line.DebitCents, line.CreditCents);
                journalLines++;
            }

            audit.Add(new DemoAuditEntry(postedAgo, $"agent:{Orchestrators.AccountsPayableLead}", "journal_entry.posted",
                "journal_entry", entry.Id,
                Json(new { description = entry.Description, total_cents = entry.TotalCents, lines = entry.Lines.Count })));
        }

        // API keys: one active (expires in 90 days), one revoked. Only the sha256 and a prefix are kept.
        var activeKey = NewApiKey();
        batch.Add(
            $"INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, {Ago(6)}, {Ago(7)})",
            $"key-{tenant.Id}-primary", tenant.Id, "Primary integration key", activeKey.Prefix, activeKey.Hash, 30 * Day, -90 * Day);
        audit.Add(new DemoAuditEntry(30 * Day, SeedActor, "api_key.created", "api_key", $"key-{tenant.Id}-primary",
            Json(new { name = "Primary integration key", prefix = activeKey.Prefix })));

        var revokedKey = NewApiKey();
        batch.Add(
            $"INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, {Ago(6)}, {Ago(7)}, {Ago(8)})",
            $"key-{tenant.Id}-legacy", tenant.Id, "Legacy key", revokedKey.Prefix, revokedKey.Hash, 100 * Day, -265 * Day, 10 * Day);
        audit.Add(new DemoAuditEntry(100 * Day, SeedActor, "api_key.created", "api_key", $"key-{tenant.Id}-legacy",
            Json(new { name = "Legacy key", prefix = revokedKey.Prefix })));
        audit.Add(new DemoAuditEntry(10 * Day, SeedActor, "api_key.revoked", "api_key", $"key-{tenant.Id}-legacy",
            Json(new { reason = "rotated" })));

        // Integrations: active connections, each with a successful sync in the last hour.
        foreach (var integration in DemoPlatformPlan.Integrations(tenantIndex))
        {
            var connectionId = $"conn-{tenant.Id}-{integration.Provider}";
            batch.Add(
                $"INSERT INTO integration_connections (id, tenant_id, provider, status, last_success_at, created_at) VALUES ($1, $2, $3, 'active', {Ago(4)}, {Ago(5)})",
                connectionId, tenant.Id, integration.Provider, integration.LastSuccessSecondsAgo, 90 * Day);
            batch.Add(
                $"INSERT INTO integration_syncs (connection_id, tenant_id, provider, started_at, completed_at, outcome, detail) VALUES ($1, $2, $3, {Ago(4)}, {Ago(5)}, 'success', $6)",
                connectionId, tenant.Id, integration.Provider, integration.LastSuccessSecondsAgo + 25, integration.LastSuccessSecondsAgo,
                $"Imported {integration.ImportedItems} items");
            audit.Add(new DemoAuditEntry(90 * Day, SeedActor, "integration.connected", "integration_connection", connectionId,
                Json(new { provider = integration.Provider })));
        }

        // An old, handled security event (nothing in the last day).
        if (tenantIndex == 0)
        {
            batch.Add(
                $"INSERT INTO security_events (tenant_id, kind, source, occurred_at, detail) VALUES ($1, 'unauthorized_access', 'api', {Ago(2)}, $3::jsonb)",
                tenant.Id, 30 * Day,
                Json(new { ip = "203.0.113.7", path = "/v1/ledger", reason = "unknown API key", handled = true }));
        }

        // Task queue and the agent runs of finished tasks.
        foreach (var task in tasks)
        {
            batch.Add(
                $"""
                INSERT INTO tasks (id, tenant_id, orchestrator, kind, payload, status, priority, created_at,
                                   assigned_at, started_at, completed_at, attempts, last_error, claimed_by)
                VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, {Ago(8)}, {Ago(9)}, {Ago(10)}, {Ago(11)}, $12, $13, $14)
                """,
                task.Id, task.TenantId, task.Orchestrator, task.Kind, Json(new { summary = task.Summary, demo = true }),
                task.Status, task.Priority, task.CreatedSecondsAgo, task.AssignedSecondsAgo, task.StartedSecondsAgo,
                task.CompletedSecondsAgo, task.Attempts, task.LastError, task.ClaimedBy);

            if (task is { Status: "completed" or "failed", StartedSecondsAgo: { } startedAgo, CompletedSecondsAgo: { } completedAgo })
            {
                var durationMs = (startedAgo - completedAgo) * 1000L;
                var cost = Math.Round(task.Tokens * 0.000012m, 6);
                batch.Add(
                    $"""
                    INSERT INTO agent_runs (id, tenant_id, agent_id, task_id, status, started_at, completed_at,
                                            duration_ms, tokens_used, cost, output)
                    VALUES ($1, $2, $3, $4, $5, {Ago(6)}, {Ago(7)}, $8, $9, $10, $11::jsonb)
                    """,
                    $"run-{task.Id}", task.TenantId, task.Orchestrator, task.Id, task.Status, startedAgo, completedAgo,
                    durationMs, task.Tokens, cost,
                    Json(task.Status == "completed" ? new { result = "done", error = (string?)null } : new { result = "failed", error = task.LastError }));
            }
        }

        // Audit entries go in chronologically; the database assigns seq, prev_hash and hash.
        foreach (var entry in audit.OrderByDescending(entry => entry.SecondsAgo))
        {
            batch.Add(
                $"INSERT INTO audit_log (tenant_id, occurred_at, actor, action, entity_type, entity_id, payload) VALUES ($1, {Ago(2)}, $3, $4, $5, $6, $7::jsonb)",
                tenant.Id, entry.SecondsAgo, entry.Actor, entry.Action, entry.EntityType, entry.EntityId, entry.PayloadJson);
        }

        return new TenantCounts(tasks.Count, audit.Count, journalLines);
    }

    /// <summary>SQL for "parameter <paramref name="parameter"/> seconds before now()" (NULL stays NULL;
    /// negative means the future).</summary>
    private static string Ago(int parameter) => $"now() - make_interval(secs => ${parameter}::float8)";

    private static string Json<T>(T value) => JsonSerializer.Serialize(value);

    private sealed record ApiKeyMaterial(string Prefix, string Hash);

    private static ApiKeyMaterial NewApiKey()
    {
        // The key itself is discarded: nobody needs to call the demo API with it.
        var key = "ck_live_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24))
            .Replace('+', '-').Replace('/', '_').TrimEnd('=');
        return new ApiKeyMaterial(key[..12], Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key))));
    }

    /// <summary>Collects one tenant's inserts and sends them in a single round trip.</summary>
    private sealed class TenantSeedBatch(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        private readonly NpgsqlBatch _batch = new(connection, transaction);

        public void Add(string sql, params object?[] values)
        {
            var command = new NpgsqlBatchCommand(sql);
            foreach (var value in values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }

            _batch.BatchCommands.Add(command);
        }

        public async Task ExecuteAsync(CancellationToken ct)
        {
            await using (_batch)
            {
                await _batch.ExecuteNonQueryAsync(ct);
            }
        }
    }
}
