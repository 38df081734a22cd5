using ClawKeeper.Platform.Schema;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Platform.Tests.Schema;

public sealed class PlatformMigratorSpec
{
    private static readonly string[] ContractTables =
    [
        "tenants", "tasks", "agent_runs", "audit_log", "ledger_accounts", "journal_entries", "journal_lines",
        "api_keys", "security_events", "integration_connections", "integration_syncs", "write_blocks", "schema_migrations",
    ];

    [Fact]
    public async Task Migrating_an_empty_database_applies_every_migration_and_a_second_run_applies_nothing()
    {
        var database = await TestDatabases.CreateEmptyAsync();
        var allFiles = PlatformMigrator.Migrations.Select(m => m.FileName).ToArray();
        Assert.Contains("0001_platform_schema.sql", allFiles);

        var first = await PlatformMigrator.MigrateAsync(database);
        var second = await PlatformMigrator.MigrateAsync(database);

        Assert.Equal(allFiles, first.Applied);
        Assert.Empty(first.AlreadyApplied);
        Assert.Empty(second.Applied);
        Assert.Equal(allFiles, second.AlreadyApplied);

        var recorded = await Sql.RowsAsync(database, "SELECT version, name, checksum FROM schema_migrations ORDER BY version");
        Assert.Equal(
            PlatformMigrator.Migrations.Select(m => $"{m.Version}|{m.Name}|{m.Checksum}"),
            recorded.Select(row => $"{row[0]}|{row[1]}|{row[2]}"));
    }

    [Fact]
    public async Task Migration_creates_every_contract_table_the_system_tenant_and_the_application_role()
    {
        var database = await TestDatabases.CreateEmptyAsync();
        await PlatformMigrator.MigrateAsync(database);

        var tables = await Sql.RowsAsync(database,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename");
        var tableNames = tables.Select(row => (string)row[0]!).ToHashSet();
        Assert.All(ContractTables, table => Assert.Contains(table, tableNames));

        var system = await Sql.RowsAsync(database, "SELECT name, status FROM tenants WHERE id = 'system'");
        Assert.Equal(["ClawKeeper system", "active"], Assert.Single(system));

        var role = Assert.Single(await Sql.RowsAsync(database,
            "SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'clawkeeper_app'"));
        Assert.Equal([false, false, false], role);

        var ownedByApp = await Sql.ScalarAsync<long>(database,
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'clawkeeper_app'");
        Assert.Equal(0, ownedByApp);
    }

    [Fact]
    public async Task A_changed_checksum_of_an_applied_migration_is_refused_naming_the_file()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database,
            "UPDATE schema_migrations SET checksum = repeat('a', 64) WHERE version = '0001'");

        var refused = await Assert.ThrowsAsync<PlatformMigrationException>(() => PlatformMigrator.MigrateAsync(database));

        Assert.Contains("0001_platform_schema.sql", refused.Message);
        Assert.Contains(new string('a', 64), refused.Message);
        Assert.Contains(PlatformMigrator.Migrations[0].Checksum, refused.Message);
    }

    [Fact]
    public async Task Two_nodes_migrating_at_once_apply_each_migration_exactly_once()
    {
        var database = await TestDatabases.CreateEmptyAsync();

        var results = await Task.WhenAll(
            Task.Run(() => PlatformMigrator.MigrateAsync(database)),
            Task.Run(() => PlatformMigrator.MigrateAsync(database)));

        var allFiles = PlatformMigrator.Migrations.Select(m => m.FileName).ToArray();
        Assert.Equal(allFiles, results.SelectMany(result => result.Applied).Order(StringComparer.Ordinal));
        Assert.Equal(allFiles, results.SelectMany(result => result.AlreadyApplied).Order(StringComparer.Ordinal));
        Assert.Equal(allFiles.Length, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM schema_migrations"));
    }

    [Fact]
    public async Task A_failing_migration_is_rolled_back_whole_and_named_and_the_earlier_ones_stay_applied()
    {
        var database = await TestDatabases.CreateEmptyAsync();
        PlatformMigration[] migrations =
        [
            PlatformMigrator.Create("0001", "first", "0001_first.sql", "CREATE TABLE first_table (id int);"),
            PlatformMigrator.Create("0002", "broken", "0002_broken.sql", """
                CREATE TABLE half_done (id int);
                INSERT INTO half_done VALUES (1);
                CREATE TABLE broken (id int REFERENCES missing_table (id));
                """),
            PlatformMigrator.Create("0003", "never", "0003_never.sql", "CREATE TABLE never_reached (id int);"),
        ];

        var failure = await Assert.ThrowsAsync<PlatformMigrationException>(() => PlatformMigrator.MigrateAsync(database, migrations));

        Assert.Contains("0002_broken.sql", failure.Message);
        Assert.Contains("missing_table", failure.Message);
        Assert.Equal(["0001"], (await Sql.RowsAsync(database, "SELECT version FROM schema_migrations")).Select(row => row[0]));
        var tables = await Sql.RowsAsync(database,
            "SELECT to_regclass('first_table')::text, to_regclass('half_done')::text, to_regclass('never_reached')::text");
        Assert.Equal(["first_table", null, null], Assert.Single(tables));
    }

    [Fact]
    public async Task An_unreachable_database_is_reported_without_the_password()
    {
        var unreachable = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = 1, Database = "nowhere", Username = "ck", Password = "pw-never-shown", Timeout = 2,
        }.ConnectionString;

        var failure = await Assert.ThrowsAsync<PlatformMigrationException>(() => PlatformMigrator.MigrateAsync(unreachable));

        Assert.Contains("127.0.0.1:1/nowhere as ck", failure.Message);
        Assert.DoesNotContain("pw-never-shown", failure.Message);
    }
}
