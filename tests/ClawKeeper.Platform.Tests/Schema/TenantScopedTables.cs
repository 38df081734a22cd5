using ClawKeeper.Testing;

namespace ClawKeeper.Platform.Tests.Schema;

/// <summary>The tenant-scoped tables of the platform schema and a way to put one row of a tenant in each.</summary>
internal static class TenantScopedTables
{
    /// <summary>Table name and the column that names its tenant.</summary>
    public static readonly IReadOnlyList<(string Table, string TenantColumn)> All =
    [
        ("tenants", "id"),
        ("tasks", "tenant_id"),
        ("agent_runs", "tenant_id"),
        ("audit_chain_heads", "tenant_id"),
        ("audit_log", "tenant_id"),
        ("ledger_accounts", "tenant_id"),
        ("journal_entries", "tenant_id"),
        ("journal_lines", "tenant_id"),
        ("api_keys", "tenant_id"),
        ("security_events", "tenant_id"),
        ("integration_connections", "tenant_id"),
        ("integration_syncs", "tenant_id"),
        ("ledger_balances", "tenant_id"), // 0002: running totals, maintained by triggers on journal_lines
    ];

    /// <summary>Inserts (as the privileged connection) a tenant and one row of it in every tenant table.</summary>
    public static async Task InsertTenantWithOneRowEachAsync(string connectionString, string tenantId)
    {
        string[] statements =
        [
            "INSERT INTO tenants (id, name) VALUES ($1, 'Tenant ' || $1)",
            "INSERT INTO tasks (id, tenant_id, orchestrator, status) VALUES ($1 || '-task', $1, 'cfo', 'pending')",
            "INSERT INTO agent_runs (id, tenant_id, agent_id, task_id, status, started_at) VALUES ($1 || '-run', $1, 'cfo', $1 || '-task', 'completed', now())",
            "INSERT INTO audit_log (tenant_id, actor, action) VALUES ($1, 'test', 'tenant.created')",
            "INSERT INTO ledger_accounts (id, tenant_id, code, name, type) VALUES ($1 || '-cash', $1, '1000', 'Cash', 'asset')",
            "INSERT INTO journal_entries (id, tenant_id, description) VALUES ($1 || '-je', $1, 'probe')",
            "INSERT INTO journal_lines (tenant_id, entry_id, account_id, debit_cents) VALUES ($1, $1 || '-je', $1 || '-cash', 100)",
            "INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash) VALUES ($1 || '-key', $1, 'key', 'ck_', encode(sha256(convert_to($1, 'UTF8')), 'hex'))",
            "INSERT INTO security_events (tenant_id, kind) VALUES ($1, 'unauthorized_access')",
            "INSERT INTO integration_connections (id, tenant_id, provider) VALUES ($1 || '-plaid', $1, 'plaid')",
            "INSERT INTO integration_syncs (connection_id, tenant_id, provider, outcome) VALUES ($1 || '-plaid', $1, 'plaid', 'success')",
        ];
        await using var connection = await Sql.OpenAsync(connectionString);
        foreach (var statement in statements)
        {
            await Sql.ExecuteAsync(connection, statement, tenantId);
        }
    }
}
