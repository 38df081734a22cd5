using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

public class NoOrphanedRecordsCheckSpec
{
    private static async Task<CheckResult> FullAsync(string database)
    {
        await using var platform = NpgsqlDataSource.Create(database);
        return await Integrity.RunAsync(new NoOrphanedRecordsCheck(platform, Integrity.Settings), Integrity.Full);
    }

    [Fact]
    public async Task The_seeded_platform_has_every_key_and_no_orphan()
    {
        var result = await FullAsync(await TestDatabases.CreateSeededAsync());
        Assert.True(result.Status == CheckStatus.Pass, result.Detail);
        Assert.StartsWith($"{NoOrphanedRecordsCheck.ExpectedForeignKeys.Count} foreign keys declared, 0 problem(s)", result.Observed);
    }

    [Fact]
    public async Task A_not_valid_foreign_key_and_the_orphans_it_let_in_are_reported()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            alter table tasks drop constraint tasks_tenant_id_fkey;
            insert into tasks (id, tenant_id, orchestrator, status) values ('task-of-nobody', 't-ghost', 'cfo', 'pending');
            alter table tasks add constraint tasks_tenant_id_fkey foreign key (tenant_id) references tenants (id) not valid;
            """);
        var result = await FullAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("tasks.tasks_tenant_id_fkey → tenants: NOT VALID", result.Detail);
        Assert.Contains("tasks(tenant_id) → tenants: 1 orphaned row(s), e.g. t-ghost", result.Detail);
    }

    [Fact]
    public async Task A_dropped_foreign_key_and_disabled_enforcement_are_reported()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            alter table api_keys drop constraint api_keys_tenant_id_fkey;
            alter table journal_lines disable trigger all;
            """);
        var result = await FullAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("api_keys → tenants: foreign key missing", result.Detail);
        Assert.Contains("journal_lines: 6 foreign-key enforcement trigger(s) disabled", result.Detail);
        Assert.Contains("write_block_guard", result.Detail);
    }

    [Fact]
    public async Task Soft_references_without_a_parent_are_reported_and_heartbeat_rows_are_not()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            begin; select set_config('app.tenant_id', 't-acme-bakery', true);
            insert into audit_log (tenant_id, actor, action, entity_type, entity_id) values ('t-acme-bakery', 'bob', 'journal_entry.posted', 'journal_entry', 'je-vanished');
            insert into agent_runs (id, tenant_id, agent_id, task_id, status, started_at) values ('run-orphan', 't-acme-bakery', 'cfo', 'task-vanished', 'completed', now());
            commit;
            begin; select set_config('app.tenant_id', 'system', true);
            insert into agent_runs (id, tenant_id, agent_id, task_id, status, started_at) values ('heartbeat-x', 'system', 'clawkeeper', 'heartbeat-2026-11-28T04:00:00Z', 'completed', now());
            commit;
            """);
        var result = await FullAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("audit_log(journal_entry) → journal_entries: 1 entry about a missing journal_entry, e.g. t-acme-bakery:je-vanished", result.Detail);
        Assert.Contains("agent_runs.task_id → tasks: 1 run(s) of a missing task, e.g. run-orphan (task task-vanished)", result.Detail);
        Assert.DoesNotContain("heartbeat-x", result.Detail);
    }
}
