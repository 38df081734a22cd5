using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Platform.Tests.Schema;

/// <summary>Runs against one database holding tenants A and B; every test works in a transaction
/// that is rolled back.</summary>
public sealed class RowLevelSecuritySpec(RowLevelSecuritySpec.TwoTenantPlatform platform) : IClassFixture<RowLevelSecuritySpec.TwoTenantPlatform>
{
    public sealed class TwoTenantPlatform : IAsyncLifetime
    {
        public string ConnectionString { get; private set; } = "";

        public async Task InitializeAsync()
        {
            ConnectionString = await TestDatabases.CreateMigratedAsync();
            await TenantScopedTables.InsertTenantWithOneRowEachAsync(ConnectionString, TenantA);
            await TenantScopedTables.InsertTenantWithOneRowEachAsync(ConnectionString, TenantB);
        }

        public Task DisposeAsync() => Task.CompletedTask;
    }

    private const string TenantA = "t-rls-a";
    private const string TenantB = "t-rls-b";

    [Fact]
    public async Task Every_tenant_table_has_row_level_security_enabled_forced_and_a_tenant_isolation_policy()
    {
        var database = platform.ConnectionString;

        foreach (var (table, tenantColumn) in TenantScopedTables.All)
        {
            var row = Assert.Single(await Sql.RowsAsync(database, """
                SELECT c.relrowsecurity, c.relforcerowsecurity, p.qual, p.with_check
                FROM pg_class c
                LEFT JOIN pg_policies p ON p.schemaname = 'public' AND p.tablename = c.relname AND p.policyname = 'tenant_isolation'
                WHERE c.oid = to_regclass('public.' || $1)
                """, table));
            Assert.True((bool)row[0]!, $"{table}: row level security not enabled");
            Assert.True((bool)row[1]!, $"{table}: row level security not forced");
            Assert.Equal($"({tenantColumn} = current_setting('app.tenant_id'::text, true))", row[2]);
            Assert.Equal($"({tenantColumn} = current_setting('app.tenant_id'::text, true))", row[3]);
        }
    }

    [Fact]
    public async Task Every_table_with_a_tenant_id_column_is_a_known_tenant_table()
    {
        var database = platform.ConnectionString;

        var tablesWithTenantId = (await Sql.RowsAsync(database, """
                SELECT table_name FROM information_schema.columns
                WHERE table_schema = 'public' AND column_name = 'tenant_id'
                """))
            .Select(row => (string)row[0]!)
            .ToHashSet();

        Assert.Subset(TenantScopedTables.All.Select(t => t.Table).ToHashSet(), tablesWithTenantId);
        Assert.Equal(TenantScopedTables.All.Count - 1, tablesWithTenantId.Count); // all but tenants itself
    }

    [Fact]
    public async Task The_application_role_sees_only_the_rows_of_the_tenant_in_app_tenant_id()
    {
        var database = platform.ConnectionString;
        await using var connection = await Sql.OpenAsync(database);
        await using var transaction = await connection.BeginTransactionAsync();
        await ActAsApplicationAsync(connection, TenantA);

        foreach (var (table, tenantColumn) in TenantScopedTables.All)
        {
            var row = Assert.Single(await Sql.RowsAsync(connection,
                $"SELECT count(*), count(*) FILTER (WHERE {tenantColumn} IS DISTINCT FROM '{TenantA}') FROM {table}"));
            Assert.True((long)row[0]! >= 1, $"{table}: the application role should see tenant A's row");
            Assert.Equal(0L, row[1]);
        }

        // The privileged connection sees both tenants, so there was something to hide.
        foreach (var (table, tenantColumn) in TenantScopedTables.All)
        {
            var tenants = await Sql.ScalarAsync<long>(database,
                $"SELECT count(DISTINCT {tenantColumn}) FROM {table} WHERE {tenantColumn} IN ('{TenantA}', '{TenantB}')");
            Assert.Equal(2, tenants);
        }
    }

    [Fact]
    public async Task Without_app_tenant_id_the_application_role_sees_nothing()
    {
        var database = platform.ConnectionString;
        await using var connection = await Sql.OpenAsync(database);
        await using var transaction = await connection.BeginTransactionAsync();
        await Sql.ExecuteAsync(connection, "SET LOCAL ROLE clawkeeper_app");

        foreach (var (table, _) in TenantScopedTables.All)
        {
            Assert.Equal(0L, await Sql.ScalarAsync<long>(connection, $"SELECT count(*) FROM {table}"));
        }
    }

    [Theory]
    [InlineData("INSERT INTO tenants (id, name) VALUES ('t-rls-b2', 'sneaky')")]
    [InlineData("INSERT INTO tasks (id, tenant_id, orchestrator, status) VALUES ('sneaky', 't-rls-b', 'cfo', 'pending')")]
    [InlineData("INSERT INTO agent_runs (id, tenant_id, agent_id, status, started_at) VALUES ('sneaky', 't-rls-b', 'cfo', 'completed', now())")]
    [InlineData("INSERT INTO audit_log (tenant_id, actor, action) VALUES ('t-rls-b', 'sneaky', 'forge')")]
    [InlineData("INSERT INTO ledger_accounts (id, tenant_id, code, name, type) VALUES ('sneaky', 't-rls-b', '9999', 'x', 'asset')")]
    [InlineData("INSERT INTO journal_entries (id, tenant_id) VALUES ('sneaky', 't-rls-b')")]
    [InlineData("INSERT INTO journal_lines (tenant_id, entry_id, account_id, debit_cents) VALUES ('t-rls-b', 't-rls-b-je', 't-rls-b-cash', 1)")]
    [InlineData("INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash) VALUES ('sneaky', 't-rls-b', 'k', 'ck_', repeat('b', 64))")]
    [InlineData("INSERT INTO security_events (tenant_id, kind) VALUES ('t-rls-b', 'unauthorized_access')")]
    [InlineData("INSERT INTO integration_connections (id, tenant_id, provider) VALUES ('sneaky', 't-rls-b', 'xero')")]
    [InlineData("INSERT INTO integration_syncs (connection_id, tenant_id, provider) VALUES ('t-rls-b-plaid', 't-rls-b', 'plaid')")]
    [InlineData("INSERT INTO audit_chain_heads (tenant_id, last_seq, last_hash) VALUES ('t-rls-a', 99, repeat('0', 64))")]
    [InlineData("UPDATE tasks SET tenant_id = 't-rls-b' WHERE tenant_id = 't-rls-a'")]
    [InlineData("UPDATE audit_chain_heads SET last_seq = last_seq + 1")]
    public async Task The_application_role_cannot_write_rows_of_another_tenant_nor_move_an_audit_chain_head(string write)
    {
        var database = platform.ConnectionString;
        await using var connection = await Sql.OpenAsync(database);
        await using var transaction = await connection.BeginTransactionAsync();
        await ActAsApplicationAsync(connection, TenantA);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => Sql.ExecuteAsync(connection, write));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
    }

    [Fact]
    public async Task The_application_role_cannot_change_or_delete_rows_of_another_tenant()
    {
        var database = platform.ConnectionString;
        await using var connection = await Sql.OpenAsync(database);
        await using var transaction = await connection.BeginTransactionAsync();
        await ActAsApplicationAsync(connection, TenantA);

        Assert.Equal(0, await Sql.ExecuteAsync(connection, "UPDATE tasks SET priority = 9 WHERE tenant_id = $1", TenantB));
        Assert.Equal(0, await Sql.ExecuteAsync(connection, "DELETE FROM api_keys WHERE tenant_id = $1", TenantB));
        Assert.Equal(1, await Sql.ExecuteAsync(connection, "UPDATE tasks SET priority = 7 WHERE tenant_id = $1", TenantA));

        await Sql.ExecuteAsync(connection, "RESET ROLE"); // back to the privileged role, same transaction
        var priorities = await Sql.RowsAsync(connection,
            "SELECT tenant_id, priority FROM tasks WHERE tenant_id IN ($1, $2) ORDER BY tenant_id", TenantA, TenantB);
        Assert.Equal([[TenantA, 7], [TenantB, 0]], priorities);
        Assert.Equal(1L, await Sql.ScalarAsync<long>(connection, "SELECT count(*) FROM api_keys WHERE tenant_id = $1", TenantB));
    }

    private static async Task ActAsApplicationAsync(NpgsqlConnection connection, string tenantId)
    {
        await Sql.ExecuteAsync(connection, "SET LOCAL ROLE clawkeeper_app");
        await Sql.ExecuteAsync(connection, "SELECT set_config('app.tenant_id', $1, true)", tenantId);
        Assert.Equal("clawkeeper_app", await Sql.ScalarAsync<string>(connection, "SELECT current_user"));
    }
}
