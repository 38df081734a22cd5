using System.Security.Cryptography;
using System.Text.Json;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

/// <summary>
/// Least privilege (issue 13, item 6): a login in the <c>clawkeeper_monitor</c> group (migration 0009), as
/// docs/security.md tells operators to create it, cannot lift a write block, write the books, run DDL or
/// disable triggers, and `check --once` run as it still evaluates all 21 checks against a seeded platform.
/// </summary>
public class MonitoringRoleSpec
{
    /// <summary>A fresh login in the monitoring group (roles are cluster-wide: a unique name per test) and its connection string.</summary>
    private static async Task<(string Login, string ConnectionString)> MonitorLoginAsync(string database)
    {
        var login = "ck_monitor_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        await Sql.ExecuteAsync(database, $"CREATE ROLE {login} LOGIN PASSWORD '{password}' BYPASSRLS IN ROLE clawkeeper_monitor");
        var connection = new NpgsqlConnectionStringBuilder(database) { Username = login, Password = password }.ConnectionString;
        return (login, connection);
    }

    private static async Task<string> RefusalAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        var error = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
        return error.SqlState;
    }

    [Fact]
    public async Task The_monitoring_role_cannot_lift_a_block_write_the_books_run_ddl_or_disable_triggers()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var (login, monitor) = await MonitorLoginAsync(database);

        // The group as migrated: NOLOGIN, not superuser, no CREATEROLE/CREATEDB, NOINHERIT, a member of the application role.
        var group = Assert.Single(await Sql.RowsAsync(database, """
            SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolbypassrls,
                   pg_has_role('clawkeeper_monitor', 'clawkeeper_app', 'MEMBER')
            FROM pg_roles WHERE rolname = 'clawkeeper_monitor'
            """));
        Assert.Equal(new object?[] { false, false, false, false, false, true, true }, group);

        await Sql.ExecuteAsync(database, "SELECT impose_write_block('seeded block for the spec', 'spec')");
        const string insufficientPrivilege = "42501";
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "SELECT lift_write_block('monitor', 'trying')"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "UPDATE write_blocks SET lifted_at = now()"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "DELETE FROM write_blocks"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor,
            "INSERT INTO journal_entries (id, tenant_id, description) SELECT 'x-1', id, 'forged' FROM tenants LIMIT 1"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "UPDATE journal_lines SET debit_cents = debit_cents + 1"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "DELETE FROM journal_lines"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "UPDATE ledger_accounts SET name = name"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "UPDATE ledger_balances SET debit_cents = 0"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "DELETE FROM audit_log"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "TRUNCATE journal_lines"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "ALTER TABLE journal_lines DISABLE TRIGGER ALL"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "CREATE TABLE evil (id int)"));
        Assert.Equal(insufficientPrivilege, await RefusalAsync(monitor, "UPDATE api_keys SET revoked_at = NULL"));

        // The block is still there; the owner's connection (super_admin's path) lifts it.
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM write_blocks WHERE lifted_at IS NULL"));
        Assert.False(await Sql.ScalarAsync<bool>(database, $"SELECT has_function_privilege('{login}', 'lift_write_block(text, text)', 'EXECUTE')"));
        Assert.True(await Sql.ScalarAsync<bool>(database, $"SELECT has_function_privilege('{login}', 'impose_write_block(text, text)', 'EXECUTE')"));
    }

    [Fact]
    public async Task Check_once_as_the_monitoring_role_evaluates_all_21_checks_and_records_its_run()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var (_, monitor) = await MonitorLoginAsync(database);
        await using var providers = await LoopbackHttpServer.StartAsync();
        var result = await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb(monitor),
            "check", "--once", "--json", "--config", ClawKeeperProcess.ProvidersConfig(providers.BaseAddress));

        using var report = JsonDocument.Parse(result.StandardOutput);
        var checks = report.RootElement.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray()).ToList();
        Assert.Equal(21, checks.Count);
        Assert.All(checks, c => Assert.True(c.GetProperty("status").GetString() is "pass" or "skipped",
            $"{c.GetProperty("check").GetString()}: {c.GetProperty("status").GetString()} — {c.GetProperty("observed")} | {c.GetProperty("detail")}"));
        Assert.True(result.ExitCode == 0, result.ToString());
        // It could append its own run, and the isolation probe acted as the application role.
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM agent_runs WHERE agent_id = 'clawkeeper'"));
        var isolation = checks.Single(c => c.GetProperty("check").GetString() == "tenant_isolation");
        Assert.Equal("pass", isolation.GetProperty("status").GetString());
        Assert.Contains("clawkeeper_app", isolation.ToString());
    }

    [Fact]
    public async Task The_monitoring_role_imposes_a_block_through_the_function_only()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var (_, monitor) = await MonitorLoginAsync(database);
        await using (var connection = new NpgsqlConnection(monitor))
        {
            await connection.OpenAsync();
            await using var impose = new NpgsqlCommand("SELECT impose_write_block('integrity failure', 'clawkeeper-heartbeat')", connection);
            Assert.IsType<long>(await impose.ExecuteScalarAsync());
        }
        Assert.Equal("42501", await RefusalAsync(monitor, "INSERT INTO write_blocks (reason, imposed_by) VALUES ('direct', 'monitor')"));
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM write_blocks WHERE lifted_at IS NULL AND imposed_by = 'clawkeeper-heartbeat'"));
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM audit_log WHERE action = 'write_block.imposed'"));
    }

    [Fact]
    public async Task Writes_unblock_lifts_through_super_admins_own_connection_only()
    {
        const string token = "correct-horse-battery-staple";
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "SELECT impose_write_block('financial_totals_balance: test imbalance', 'clawkeeper-heartbeat')");
        var (_, monitor) = await MonitorLoginAsync(database);
        Dictionary<string, string?> Environment(string? admin) => new()
        {
            ["CLAWKEEPER_PLATFORM_DB"] = monitor,
            ["CLAWKEEPER_ADMIN_DB"] = admin,
            ["CLAWKEEPER_SUPER_ADMIN_TOKEN_SHA256"] = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token))),
            ["CLAWKEEPER_SUPER_ADMIN_TOKEN"] = token,
        };

        // The monitoring role alone: a clear refusal naming the admin path, the block stays.
        var refused = await ClawKeeperProcess.RunAsync(Environment(null), "writes", "unblock", "--reason", "repaired");
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains("CLAWKEEPER_ADMIN_DB", refused.StandardError);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM write_blocks WHERE lifted_at IS NOT NULL"));

        // super_admin's own connection lifts it; the checks still ran on the monitoring connection.
        var lifted = await ClawKeeperProcess.RunAsync(Environment(database), "writes", "unblock", "--reason", "repaired");
        Assert.True(lifted.ExitCode == 0, lifted.ToString());
        Assert.DoesNotContain("Password", lifted.StandardOutput + lifted.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM write_blocks WHERE lifted_at IS NOT NULL"));
    }
}
