using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using static ClawKeeper.Actors.Tests.Checks.SecurityPosture.SecurityPostureTesting;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>
/// Row-level security posture beyond tables: a SECURITY DEFINER function or a view (without security_invoker)
/// or materialized view over tenant tables that the application role may use is an <c>rls_policies_active</c>
/// failure naming the object; the live probe reads through such views. Real PostgreSQL, migrated schema.
/// </summary>
public class RlsBypassesSpec
{
    private static async Task<CheckResult> RlsAsync(string database)
    {
        await using var platform = NpgsqlDataSource.Create(database);
        return await Integrity.RunAsync(new RlsPoliciesActiveCheck(platform, Integrity.Settings), Integrity.Full);
    }

    [Fact]
    public async Task The_migrations_own_definer_functions_pass_trigger_functions_and_ones_the_application_cannot_execute()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        // The migrations do create SECURITY DEFINER functions that read tenant tables: each is a trigger function
        // (cannot be called) or has EXECUTE revoked from PUBLIC, so the application role cannot use it.
        var definers = await Sql.RowsAsync(database, """
            select p.oid::regprocedure::text, p.prorettype = 'trigger'::regtype, has_function_privilege('clawkeeper_app', p.oid, 'EXECUTE')
            from pg_proc p where p.prosecdef and p.pronamespace = 'public'::regnamespace order by 1
            """);
        Assert.Contains(definers, d => (string)d[0]! == "ledger_balances_apply(jsonb)" && !(bool)d[1]! && !(bool)d[2]!);
        Assert.Contains(definers, d => (string)d[0]! == "audit_log_assign_chain()" && (bool)d[1]!);
        Assert.All(definers, d => Assert.True((bool)d[1]! || !(bool)d[2]!, $"{d[0]} is callable by clawkeeper_app"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from pg_class where relkind in ('v', 'm') and relnamespace = 'public'::regnamespace"));

        var result = await RlsAsync(database);
        Assert.True(result.Status == CheckStatus.Pass, result.Detail);
    }

    [Theory]
    [InlineData("""
        create function all_journal_lines() returns setof journal_lines language sql security definer
        as 'select * from journal_lines'
        """, "function all_journal_lines() is SECURITY DEFINER (runs as ", "reads tenant table(s) journal_lines")]
    [InlineData("""
        create function tenant_count() returns bigint language sql security definer stable
        return (select count(*) from tenants)
        """, "function tenant_count() is SECURITY DEFINER", "reads tenant table(s) tenants")]
    [InlineData("""
        create function read_any(p_table text) returns bigint language plpgsql security definer
        as $$ declare n bigint; begin execute format('select count(*) from %I', p_table) into n; return n; end $$
        """, "function read_any(text) is SECURITY DEFINER", "runs dynamic SQL (EXECUTE: it can read any tenant table)")]
    [InlineData("""
        create view all_tasks as select id, tenant_id, status from tasks;
        grant select on all_tasks to clawkeeper_app
        """, "view all_tasks reads tenant table(s) tasks without security_invoker and clawkeeper_app may SELECT it", "row-level security is checked as its owner")]
    [InlineData("""
        create view inner_books as select tenant_id, debit_cents from journal_lines with check option;
        create view outer_books with (security_invoker = false) as select tenant_id, sum(debit_cents) as debits from inner_books group by tenant_id;
        grant select on outer_books to clawkeeper_app
        """, "view outer_books reads tenant table(s) journal_lines without security_invoker", "clawkeeper_app may SELECT it")]
    [InlineData("""
        create materialized view audit_summary as select tenant_id, count(*) as entries from audit_log group by tenant_id;
        grant select on audit_summary to clawkeeper_app
        """, "materialized view audit_summary holds rows of tenant table(s) audit_log", "a materialized view has no row-level security")]
    public async Task A_definer_function_or_a_view_over_tenant_tables_usable_by_the_application_is_named(string sql, string expected, string alsoExpected)
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database, sql);
        var result = await RlsAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains(expected, result.Detail);
        Assert.Contains(alsoExpected, result.Detail);
    }

    [Theory]
    [InlineData("create function all_lines_secret() returns bigint language sql security definer as 'select count(*) from journal_lines'; revoke all on function all_lines_secret() from public")]
    [InlineData("create function invoker_count() returns bigint language sql as 'select count(*) from journal_lines'")]
    [InlineData("create function definer_no_tenant_table() returns bigint language sql security definer as 'select count(*) from write_blocks'")]
    [InlineData("create view invoker_tasks with (security_invoker = true) as select id, tenant_id from tasks; grant select on invoker_tasks to clawkeeper_app")]
    [InlineData("create view ungranted_tasks as select id, tenant_id from tasks")]
    [InlineData("create view open_blocks as select * from write_blocks where lifted_at is null; grant select on open_blocks to clawkeeper_app")]
    public async Task What_cannot_read_tenant_rows_with_another_roles_rights_passes(string sql)
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database, sql);
        var result = await RlsAsync(database);
        Assert.True(result.Status == CheckStatus.Pass, result.Detail);
    }

    [Fact]
    public async Task The_live_probe_reads_through_a_view_and_sees_the_leak_and_a_security_invoker_view_holds()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            create view tasks_overview as select id, tenant_id, status from tasks;
            grant select on tasks_overview to clawkeeper_app;
            create view tasks_invoker with (security_invoker = true) as select id, tenant_id, status from tasks;
            grant select on tasks_invoker to clawkeeper_app
            """);
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await Integrity.RunAsync(new TenantIsolationCheck(platform, Posture with { IsolationPairsPerRound = 12 }, firstRound: 0), Integrity.Full);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("tasks_overview", result.Observed);
        Assert.Contains("tasks_overview: rows of other tenants visible — as t-acme-bakery: ", result.Detail);
        Assert.DoesNotContain("tasks_invoker:", result.Detail);
    }
}
