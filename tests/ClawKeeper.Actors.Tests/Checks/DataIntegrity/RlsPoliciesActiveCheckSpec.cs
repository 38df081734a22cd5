using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

public class RlsPoliciesActiveCheckSpec
{
    private static async Task<CheckResult> RunAsync(string database)
    {
        await using var platform = NpgsqlDataSource.Create(database);
        return await Integrity.RunAsync(new RlsPoliciesActiveCheck(platform, Integrity.Settings), Integrity.Full);
    }

    [Fact]
    public async Task The_migrated_schema_passes_and_says_how_many_tables_were_examined()
    {
        var result = await RunAsync(await TestDatabases.CreateMigratedAsync());
        Assert.True(result.Status == CheckStatus.Pass, result.Detail);
        Assert.Equal("13 tenant tables examined, 0 problem(s)", result.Observed);
    }

    [Theory]
    [InlineData("create table invoices (id text primary key, tenant_id text not null)", "invoices: row-level security is not enabled")]
    [InlineData("alter table tasks no force row level security", "tasks: row-level security is not forced")]
    [InlineData("alter table api_keys disable row level security", "api_keys: row-level security is not enabled")]
    [InlineData("drop policy tenant_isolation on journal_lines", "journal_lines: no policy")]
    [InlineData("create policy everyone on audit_log using (true)", "audit_log: always-true policy everyone")]
    [InlineData("create policy sloppy on tasks using (status = 'pending')", "tasks: policy sloppy does not refer to the tenant column")]
    [InlineData("alter table security_events owner to clawkeeper_app", "security_events: owned by the application role clawkeeper_app")]
    [InlineData("create table ledger_archive (tenant_id text not null, amount bigint) partition by list (tenant_id)", "partitioned table ledger_archive: row-level security is not enabled")]
    public async Task Each_weakening_is_caught(string sql, string expected)
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database, sql);
        var result = await RunAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains(expected, result.Detail);
    }

    [Fact]
    public async Task A_database_without_tenant_tables_is_an_error_never_a_pass()
    {
        var result = await RunAsync(await TestDatabases.CreateEmptyAsync());
        Assert.Equal(CheckStatus.Error, result.Status);
        Assert.Contains("0 tenant-scoped tables", result.Detail);
    }
}
