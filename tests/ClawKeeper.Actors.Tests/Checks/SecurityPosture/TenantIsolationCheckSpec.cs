using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using static ClawKeeper.Actors.Tests.Checks.SecurityPosture.SecurityPostureTesting;

namespace ClawKeeper.Actors.Tests.Checks.SecurityPosture;

/// <summary>The live isolation probe against a real PostgreSQL whose policies are broken the ways they break in practice.</summary>
public class TenantIsolationCheckSpec
{
    private static readonly string[] SeededTenants = { "t-acme-bakery", "t-harbor-dental", "t-northwind-legal", "t-summit-hvac" };

    /// <summary>Every ordered pair of the four seeded tenants in one round.</summary>
    private static TenantIsolationCheck AllPairs(NpgsqlDataSource platform) =>
        new(platform, Posture with { IsolationPairsPerRound = 12 }, firstRound: 0);

    private static async Task<long> TenantTableCountAsync(string database) => await Sql.ScalarAsync<long>(database, """
        select count(*) from pg_class c
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
          and (c.relname = 'tenants' or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped))
        """);

    [Fact]
    public async Task The_seeded_platform_passes_every_pair_and_the_probe_leaves_nothing_behind()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var tables = await TenantTableCountAsync(database);
        Assert.True(tables >= 12, $"only {tables} tenant tables discovered");
        const string rowsSql = "select (select count(*) from tasks) + (select count(*) from security_events)";
        var rowsBefore = await Sql.ScalarAsync<long>(database, rowsSql);
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await RunAsync(AllPairs(platform));

        Assert.True(result.Status == CheckStatus.Pass, $"{result.Status}: {result.Observed} | {result.Detail}");
        Assert.Equal($"0 tables breached; 12 pair(s) × {tables} tables probed; 0 recorded failures", result.Observed);
        Assert.Contains("12 of 12 ordered pairs probed this round", result.Detail);
        Assert.Contains("t-acme-bakery→t-harbor-dental", result.Detail);
        Assert.Contains("writes for the target refused on security_events, tasks", result.Detail);
        Assert.Matches($@"\d+/{tables} tables held other tenants' rows to hide", result.Detail);
        // Rolled back: no probe row, no role or tenant context left on the pooled session.
        Assert.Equal(rowsBefore, await Sql.ScalarAsync<long>(database, rowsSql));
        await using var connection = await platform.OpenConnectionAsync();
        Assert.Equal("", await Sql.ScalarAsync<string>(connection, "select coalesce(current_setting('app.tenant_id', true), '')"));
        Assert.NotEqual("clawkeeper_app", await Sql.ScalarAsync<string>(connection, "select current_user::text"));
    }

    [Fact]
    public async Task An_always_true_policy_on_tasks_fails_naming_the_table_the_tenants_and_the_accepted_write()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "create policy leak on tasks using (true)");
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await RunAsync(AllPairs(platform));

        Assert.Equal(CheckStatus.Fail, result.Status);
        var acmeSees = await Sql.ScalarAsync<long>(database, "select count(*) from tasks where tenant_id <> 't-acme-bakery'");
        var harborTasks = await Sql.ScalarAsync<long>(database, "select count(*) from tasks where tenant_id = 't-harbor-dental'");
        Assert.Equal("1 table(s) breached (tasks); 0 recorded failure(s)", result.Observed);
        Assert.Contains($"tasks: rows of other tenants visible — as t-acme-bakery: {acmeSees} row(s) (", result.Detail);
        Assert.Contains($"t-harbor-dental {harborTasks}", result.Detail);
        Assert.Contains("tasks: a row for another tenant was accepted (rolled back) — as t-acme-bakery for t-harbor-dental, ", result.Detail);
        Assert.DoesNotContain("security_events:", result.Detail);
        Assert.DoesNotContain("ledger_accounts:", result.Detail);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from tasks where id like 'isolation-probe-%'"));
    }

    [Fact]
    public async Task A_dropped_policy_fails_because_the_tenant_no_longer_sees_its_own_rows()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "drop policy tenant_isolation on tasks");
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await RunAsync(AllPairs(platform));

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal("1 table(s) breached (tasks); 0 recorded failure(s)", result.Observed);
        Assert.Contains("tasks: the tenant's own rows are invisible as t-acme-bakery, t-harbor-dental, t-northwind-legal, t-summit-hvac — no policy admits the tenant (policy dropped?)", result.Detail);
        Assert.DoesNotContain("rows of other tenants visible", result.Detail); // deny-all leaks nothing
        Assert.DoesNotContain("was accepted", result.Detail);
    }

    [Fact]
    public async Task Row_level_security_disabled_on_a_table_fails_naming_it()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "alter table journal_entries disable row level security");
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await RunAsync(AllPairs(platform));

        Assert.Equal(CheckStatus.Fail, result.Status);
        var others = await Sql.ScalarAsync<long>(database, "select count(*) from journal_entries where tenant_id <> 't-northwind-legal'");
        Assert.Equal("1 table(s) breached (journal_entries); 0 recorded failure(s)", result.Observed);
        Assert.Contains("journal_entries: rows of other tenants visible — as t-acme-bakery: ", result.Detail);
        Assert.Contains($"as t-northwind-legal: {others} row(s) (", result.Detail);
        Assert.DoesNotContain("tasks:", result.Detail);
    }

    [Fact]
    public async Task A_new_tenant_table_without_row_level_security_is_discovered_and_fails()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            create table tenant_notes (id serial primary key, tenant_id text not null references tenants (id), note text);
            grant select, insert on tenant_notes to clawkeeper_app;
            insert into tenant_notes (tenant_id, note) values ('t-acme-bakery', 'secret recipe'), ('t-harbor-dental', 'x-ray vendor');
            """);
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await RunAsync(AllPairs(platform));

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal("1 table(s) breached (tenant_notes); 0 recorded failure(s)", result.Observed);
        Assert.Contains("tenant_notes: rows of other tenants visible — ", result.Detail);
        Assert.Contains("as t-summit-hvac: 2 row(s) (t-acme-bakery 1, t-harbor-dental 1)", result.Detail);
        Assert.Contains("as t-acme-bakery: 1 row(s) (t-harbor-dental 1)", result.Detail);
    }

    [Fact]
    public async Task A_write_for_another_tenant_accepted_by_an_insert_only_policy_fails()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "create policy leak_insert on security_events for insert with check (true)");
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await RunAsync(AllPairs(platform));

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal("1 table(s) breached (security_events); 0 recorded failure(s)", result.Observed);
        Assert.Contains("security_events: a row for another tenant was accepted (rolled back) — as t-acme-bakery for t-harbor-dental, as t-harbor-dental for t-northwind-legal, ", result.Detail);
        Assert.DoesNotContain("rows of other tenants visible", result.Detail); // reads stay isolated
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from security_events")); // the seeded one only
    }

    [Fact]
    public async Task A_recorded_isolation_failure_in_the_window_fails_and_one_before_it_does_not()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var started = Now();
        var previous = started.AddHours(-4);
        await Sql.ExecuteAsync(database,
            "insert into security_events (tenant_id, kind, source, occurred_at) values ('t-summit-hvac', 'tenant_isolation_failure', 'api', $1)",
            previous.AddMinutes(-1));
        await using var platform = NpgsqlDataSource.Create(database);
        var check = new TenantIsolationCheck(platform, Posture, firstRound: 0);

        var before = await RunAsync(check, Context(started, previous));
        Assert.True(before.Status == CheckStatus.Pass, $"{before.Status}: {before.Detail}");

        await Sql.ExecuteAsync(database,
            "insert into security_events (tenant_id, kind, source, occurred_at) values ('t-acme-bakery', 'tenant_isolation_failure', 'reporting-lead', $1)",
            started.AddMinutes(-30));
        var within = await RunAsync(check, Context(started, previous));
        Assert.Equal(CheckStatus.Fail, within.Status);
        Assert.Equal("0 table(s) breached; 1 recorded failure(s)", within.Observed);
        Assert.Contains("1 tenant_isolation_failure event(s) recorded in (", within.Detail);
        Assert.Contains("t-acme-bakery/reporting-lead ×1", within.Detail);
        Assert.DoesNotContain("t-summit-hvac/api", within.Detail);
    }

    [Fact]
    public async Task Fewer_than_two_tenants_warns_that_nothing_could_be_probed()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await using var platform = NpgsqlDataSource.Create(database);

        var none = await RunAsync(new TenantIsolationCheck(platform, Posture));
        Assert.Equal(CheckStatus.Warn, none.Status);
        Assert.Equal("0 pairs probed", none.Observed);
        Assert.Contains("0 tenant(s) besides 'system' (none): fewer than two, so no pair of tenants could be probed", none.Detail);

        await Sql.ExecuteAsync(database, "insert into tenants (id, name) values ('t-solo', 'Solo Ltd')");
        var one = await RunAsync(new TenantIsolationCheck(platform, Posture));
        Assert.Equal(CheckStatus.Warn, one.Status);
        Assert.Contains("1 tenant(s) besides 'system' (t-solo)", one.Detail);

        await Sql.ExecuteAsync(database, "insert into tenants (id, name) values ('t-duo', 'Duo Ltd')");
        var two = await RunAsync(new TenantIsolationCheck(platform, Posture));
        Assert.True(two.Status == CheckStatus.Pass, $"{two.Status}: {two.Detail}");
        Assert.StartsWith("0 tables breached; 2 pair(s)", two.Observed);
    }

    [Fact]
    public async Task An_unknown_application_role_is_an_error_not_a_pass()
    {
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var result = await RunAsync(new TenantIsolationCheck(platform, Posture with { ApplicationRole = "no_such_app_role" }));
        Assert.Equal(CheckStatus.Error, result.Status);
        Assert.Contains("application role no_such_app_role does not exist", result.Detail);
    }

    [Fact]
    public async Task Consecutive_runs_rotate_to_the_next_pairs()
    {
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var check = new TenantIsolationCheck(platform, Posture with { IsolationPairsPerRound = 3 }, firstRound: 0);

        var first = await RunAsync(check);
        var second = await RunAsync(check);

        Assert.Contains("(t-acme-bakery→t-harbor-dental, t-harbor-dental→t-northwind-legal, t-northwind-legal→t-summit-hvac)", first.Detail);
        Assert.Contains("(t-summit-hvac→t-acme-bakery, t-acme-bakery→t-northwind-legal, t-harbor-dental→t-summit-hvac)", second.Detail);
    }

    [Fact]
    public void The_rotation_covers_every_ordered_pair_and_never_pairs_a_tenant_with_itself()
    {
        for (var perRound = 1; perRound <= 13; perRound++)
        {
            var all = IsolationPairs.All(SeededTenants);
            Assert.Equal(12, all.Count);
            var rounds = (int)Math.Ceiling(12.0 / perRound);
            foreach (var start in new long[] { 0, 7, IsolationPairs.StableRound("heartbeat-2026-11-28T04:00:00Z") })
            {
                var seen = Enumerable.Range(0, rounds).SelectMany(r => IsolationPairs.ForRound(SeededTenants, start + r, perRound)).ToHashSet();
                Assert.Equal(all.ToHashSet(), seen);
            }
        }
        Assert.All(IsolationPairs.All(SeededTenants), p => Assert.NotEqual(p.Viewer, p.Target));
        // One round of n pairs has every tenant once as the viewer.
        Assert.Equal(SeededTenants, IsolationPairs.ForRound(SeededTenants, 0, 4).Select(p => p.Viewer).Order().ToArray());
        Assert.Empty(IsolationPairs.ForRound(new[] { "t-solo" }, 3, 4));
    }
}
