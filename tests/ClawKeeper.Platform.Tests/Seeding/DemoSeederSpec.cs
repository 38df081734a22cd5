using System.Security.Cryptography;
using ClawKeeper.Platform.Schema;
using ClawKeeper.Platform.Seeding;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Platform.Tests.Seeding;

/// <summary>The read-only checks share one seeded database; seeding itself gets fresh ones.</summary>
public sealed class DemoSeederSpec(SeededDatabaseFixture seeded) : IClassFixture<SeededDatabaseFixture>
{
    private static readonly string[] DemoTenantIds = ["t-acme-bakery", "t-harbor-dental", "t-northwind-legal", "t-summit-hvac"];

    [Fact]
    public async Task Seeding_writes_the_demo_platform_once_and_a_second_run_changes_nothing()
    {
        var database = await TestDatabases.CreateMigratedAsync();

        var first = await DemoSeeder.SeedAsync(database);
        var before = await FingerprintAsync(database);
        var second = await DemoSeeder.SeedAsync(database);
        var after = await FingerprintAsync(database);

        Assert.False(first.AlreadySeeded);
        Assert.Equal(4, first.Tenants);
        Assert.Equal(69, first.Tasks);
        Assert.Equal(await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM audit_log"), first.AuditEntries);
        Assert.Equal(await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM journal_lines"), first.JournalLines);
        Assert.Equal(new SeedResult(true, 0, 0, 0, 0), second);
        Assert.Equal(before, after);
        Assert.Equal(DemoTenantIds, DemoSeeder.Tenants.Select(tenant => tenant.Id));
    }

    [Fact]
    public async Task The_books_of_every_tenant_balance_entry_by_entry_and_as_a_whole()
    {
        var database = seeded.ConnectionString;

        var unbalancedEntries = await Sql.ScalarAsync<long>(database, """
            SELECT count(*) FROM (
                SELECT entry_id FROM journal_lines GROUP BY entry_id HAVING sum(debit_cents) <> sum(credit_cents)) unbalanced
            """);
        Assert.Equal(0L, unbalancedEntries);

        var perTenant = await Sql.RowsAsync(database, """
            SELECT l.tenant_id,
                   count(DISTINCT l.entry_id),
                   sum(l.debit_cents),
                   sum(l.credit_cents),
                   sum(l.debit_cents - l.credit_cents) FILTER (WHERE a.type = 'asset'),
                   sum(l.credit_cents - l.debit_cents) FILTER (WHERE a.type = 'liability'),
                   sum(l.credit_cents - l.debit_cents) FILTER (WHERE a.type = 'equity'),
                   sum(l.credit_cents - l.debit_cents) FILTER (WHERE a.type = 'revenue'),
                   sum(l.debit_cents - l.credit_cents) FILTER (WHERE a.type = 'expense')
            FROM journal_lines l JOIN ledger_accounts a ON a.id = l.account_id AND a.tenant_id = l.tenant_id
            GROUP BY l.tenant_id ORDER BY l.tenant_id
            """);

        Assert.Equal(DemoTenantIds, perTenant.Select(row => (string)row[0]!));
        Assert.All(perTenant, row =>
        {
            var (entries, debits, credits) = ((long)row[1]!, (decimal)row[2]!, (decimal)row[3]!);
            var (assets, liabilities, equity, revenue, expenses) =
                ((decimal)row[4]!, (decimal)row[5]!, (decimal)row[6]!, (decimal)row[7]!, (decimal)row[8]!);
            Assert.InRange(entries, 10, 12);
            Assert.Equal(debits, credits);
            Assert.True(assets > 0 && liabilities > 0 && equity > 0 && revenue > 0 && expenses > 0, "every account type is used");
            Assert.Equal(assets, liabilities + equity + (revenue - expenses));
        });

        // Tenants differ (amounts are scaled per tenant), so a per-tenant mix-up would show.
        Assert.Equal(4, perTenant.Select(row => (decimal)row[4]!).Distinct().Count());
    }

    [Fact]
    public async Task The_task_queue_is_healthy_relative_to_now()
    {
        var database = seeded.ConnectionString;

        var byStatus = (await Sql.RowsAsync(database, "SELECT status, count(*) FROM tasks GROUP BY status"))
            .ToDictionary(row => (string)row[0]!, row => (long)row[1]!);
        Assert.Equal(18L, byStatus["pending"]);
        Assert.Equal(4L, byStatus["assigned"]);
        Assert.Equal(5L, byStatus["running"]);
        Assert.Equal(40L, byStatus["completed"]);
        Assert.Equal(1L, byStatus["failed"]);
        Assert.Equal(1L, byStatus["cancelled"]);

        var health = Assert.Single(await Sql.RowsAsync(database, """
            SELECT
              (SELECT count(*) FROM tasks WHERE status IN ('assigned', 'running')
                 AND coalesce(started_at, assigned_at, created_at) < now() - interval '1 hour'),
              (SELECT count(*) FROM tasks WHERE status = 'running' AND started_at > now() - interval '11 minutes'),
              (SELECT count(*) FROM tasks WHERE status = 'completed' AND completed_at > now() - interval '30 minutes'),
              (SELECT avg(extract(epoch FROM completed_at - started_at)) FROM tasks WHERE status = 'completed'),
              (SELECT max(extract(epoch FROM completed_at - started_at)) FROM tasks WHERE status = 'completed'),
              (SELECT min(extract(epoch FROM completed_at - started_at)) FROM tasks WHERE status = 'completed'),
              (SELECT count(*) FROM tasks WHERE status = 'failed' AND last_error IS NOT NULL
                 AND completed_at > now() - interval '30 minutes'),
              (SELECT count(DISTINCT orchestrator) FROM tasks),
              (SELECT count(DISTINCT orchestrator) FROM tasks WHERE status = 'pending'),
              (SELECT count(*) FROM tasks WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at IS NULL)
            """));
        Assert.Equal(0L, health[0]);                         // nothing stuck for > 1 h
        Assert.Equal(5L, health[1]);                         // running tasks started recently
        Assert.Equal(40L, health[2]);                        // completed in the last 30 minutes
        Assert.InRange((decimal)health[3]!, 2m, 30m);        // mean duration well under 60 s
        Assert.InRange((decimal)health[4]!, 2m, 30m);
        Assert.InRange((decimal)health[5]!, 2m, 30m);
        Assert.Equal(1L, health[6]);                         // one failure, explained, in the window
        Assert.Equal(9L, health[7]);                         // every orchestrator has work
        Assert.Equal(9L, health[8]);                         // ... and a pending task
        Assert.Equal(0L, health[9]);

        var errorRate = 1.0 / (40 + 1);
        Assert.InRange(errorRate, 0.02, 0.05);
        Assert.True(byStatus["pending"] < 100);
    }

    [Fact]
    public async Task Finished_tasks_have_agent_runs_and_the_rest_of_the_platform_is_healthy()
    {
        var database = seeded.ConnectionString;

        var checks = Assert.Single(await Sql.RowsAsync(database, """
            SELECT
              (SELECT count(*) FROM agent_runs r JOIN tasks t ON t.id = r.task_id
                 WHERE t.status IN ('completed', 'failed') AND r.agent_id = t.orchestrator AND r.status = t.status
                   AND r.tokens_used > 0 AND r.cost > 0
                   AND r.duration_ms = extract(epoch FROM t.completed_at - t.started_at) * 1000),
              (SELECT count(*) FROM agent_runs),
              (SELECT count(*) FROM api_keys WHERE revoked_at IS NULL AND expires_at BETWEEN now() + interval '89 days' AND now() + interval '91 days'),
              (SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL),
              (SELECT count(*) FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at <= now())),
              (SELECT count(*) FROM security_events WHERE occurred_at > now() - interval '1 day'),
              (SELECT count(*) FROM security_events WHERE kind = 'unauthorized_access'),
              (SELECT count(*) FROM integration_connections WHERE provider IN ('plaid', 'stripe') AND status = 'active'),
              (SELECT count(*) FROM integration_connections WHERE provider = 'quickbooks'),
              (SELECT count(*) FROM integration_connections WHERE provider = 'xero'),
              (SELECT count(*) FROM integration_connections c WHERE NOT EXISTS (
                  SELECT 1 FROM integration_syncs s WHERE s.connection_id = c.id AND s.outcome = 'success'
                    AND s.completed_at > now() - interval '1 hour')),
              (SELECT count(*) FROM integration_connections WHERE last_success_at < now() - interval '1 hour')
            """));

        Assert.Equal(41L, checks[0]);  // one run per completed or failed task, consistent with it
        Assert.Equal(41L, checks[1]);
        Assert.Equal(4L, checks[2]);   // one active key per tenant, expiring in 90 days
        Assert.Equal(4L, checks[3]);   // one revoked key per tenant
        Assert.Equal(0L, checks[4]);   // no active key expired
        Assert.Equal(0L, checks[5]);   // no security event in the last day
        Assert.Equal(1L, checks[6]);   // one old one
        Assert.Equal(8L, checks[7]);   // plaid + stripe for every tenant
        Assert.Equal(2L, checks[8]);
        Assert.Equal(1L, checks[9]);
        Assert.Equal(0L, checks[10]);  // every connection synced successfully in the last hour
        Assert.Equal(0L, checks[11]);

        var keyHashes = await Sql.RowsAsync(database, "SELECT key_prefix, key_hash FROM api_keys");
        Assert.All(keyHashes, row =>
        {
            Assert.StartsWith("ck_live_", (string)row[0]!);
            Assert.Matches("^[0-9a-f]{64}$", (string)row[1]!);
        });
    }

    [Fact]
    public async Task Every_demo_audit_chain_is_gapless_and_recomputes()
    {
        var database = seeded.ConnectionString;

        var chains = await Sql.RowsAsync(database, """
            SELECT tenant_id, count(*), min(seq), max(seq),
                   count(*) FILTER (WHERE hash <> audit_entry_hash(tenant_id, seq, occurred_at, actor, action,
                                                                   entity_type, entity_id, payload, prev_hash)),
                   count(*) FILTER (WHERE action = 'journal_entry.posted')
            FROM audit_log GROUP BY tenant_id ORDER BY tenant_id
            """);
        var brokenLinks = await Sql.ScalarAsync<long>(database, """
            SELECT count(*) FROM audit_log cur
            LEFT JOIN audit_log prev ON prev.tenant_id = cur.tenant_id AND prev.seq = cur.seq - 1
            WHERE cur.prev_hash IS DISTINCT FROM coalesce(prev.hash, CASE WHEN cur.seq = 1 THEN repeat('0', 64) END)
            """);
        var orphans = await Sql.ScalarAsync<long>(database, """
            SELECT (SELECT count(*) FROM journal_entries e WHERE NOT EXISTS (SELECT 1 FROM journal_lines l WHERE l.entry_id = e.id))
                 + (SELECT count(*) FROM journal_entries e WHERE NOT EXISTS (
                        SELECT 1 FROM audit_log a WHERE a.entity_type = 'journal_entry' AND a.entity_id = e.id))
            """);

        Assert.Equal(DemoTenantIds, chains.Select(row => (string)row[0]!));
        Assert.All(chains, row =>
        {
            Assert.Equal(1L, row[2]);
            Assert.Equal(row[1], row[3]);      // 1..n: no gap
            Assert.Equal(0L, row[4]);          // every hash recomputes
            Assert.Equal(11L, row[5]);         // one audit entry per journal entry
        });
        Assert.Equal(0L, brokenLinks);
        Assert.Equal(0L, orphans);
    }

    [Fact]
    public async Task The_table_owner_migrates_and_seeds_under_forced_row_level_security()
    {
        await TestDatabases.CreateMigratedAsync(); // the cluster-wide application role exists from here on
        var owner = "ck_owner_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var admin = await TestPostgres.AdminConnectionStringAsync();
        await Sql.ExecuteAsync(admin, $"CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'");
        var superuserConnection = await TestDatabases.CreateEmptyOwnedByAsync(owner);
        var ownerConnection = new NpgsqlConnectionStringBuilder(superuserConnection)
        {
            Username = owner, Password = password, Pooling = false,
        }.ConnectionString;
        try
        {
            await PlatformMigrator.MigrateAsync(ownerConnection);
            var seeded = await DemoSeeder.SeedAsync(ownerConnection);
            var again = await DemoSeeder.SeedAsync(ownerConnection);

            Assert.Equal(4, seeded.Tenants);
            Assert.True(again.AlreadySeeded);
            Assert.Equal(owner, await Sql.ScalarAsync<string>(superuserConnection,
                "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log'"));
            // Under FORCE RLS the owner sees nothing without app.tenant_id ...
            Assert.Equal(0L, await Sql.ScalarAsync<long>(ownerConnection, "SELECT count(*) FROM tasks"));
            // ... while everything landed, with intact chains.
            Assert.Equal(69L, await Sql.ScalarAsync<long>(superuserConnection, "SELECT count(*) FROM tasks"));
            Assert.Equal(seeded.AuditEntries, await Sql.ScalarAsync<long>(superuserConnection, """
                SELECT count(*) FROM audit_log
                WHERE hash = audit_entry_hash(tenant_id, seq, occurred_at, actor, action, entity_type, entity_id, payload, prev_hash)
                """));
        }
        finally
        {
            var database = new NpgsqlConnectionStringBuilder(superuserConnection).Database!;
            await Sql.ExecuteAsync(admin, $"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
            await Sql.ExecuteAsync(admin, $"DROP ROLE IF EXISTS {owner}");
        }
    }

    /// <summary>Row counts and a digest of every demo table's content.</summary>
    private static async Task<string> FingerprintAsync(string database)
    {
        string[] tables =
        [
            "tenants", "tasks", "agent_runs", "audit_log", "audit_chain_heads", "ledger_accounts", "journal_entries",
            "journal_lines", "api_keys", "security_events", "integration_connections", "integration_syncs",
        ];
        var parts = new List<string>();
        foreach (var table in tables)
        {
            parts.Add($"{table}:" + await Sql.ScalarAsync<string>(database,
                $"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"));
        }

        return string.Join('\n', parts);
    }
}
