using ClawKeeper.Platform.WriteBlocks;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Platform.Tests.WriteBlocks;

/// <summary>While a block is open the database refuses every write to the financial tables; reads keep working.</summary>
public sealed class WriteBlockStoreSpec
{
    private const string InsertEntry = """
        begin; select set_config('app.tenant_id', 't-acme-bakery', true);
        insert into journal_entries (id, tenant_id, description) values ('je-during-block', 't-acme-bakery', 'should not land');
        commit;
        """;

    private static async Task<PostgresException> RefusedAsync(string database, string sql)
    {
        var error = await Assert.ThrowsAsync<PostgresException>(() => Sql.ExecuteAsync(database, sql));
        Assert.Equal(WriteBlockStore.BlockedSqlState, error.SqlState);
        return error;
    }

    [Fact]
    public async Task A_block_refuses_every_writer_and_leaves_reads_alone()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var store = new WriteBlockStore(platform);
        var id = await store.ImposeAsync("financial_totals_balance: tenant t-acme-bakery off by 0.01", "clawkeeper-heartbeat");
        Assert.Equal(id, await store.ImposeAsync("a second failure", "clawkeeper-heartbeat")); // one block at a time

        var error = await RefusedAsync(database, InsertEntry);
        Assert.Contains($"writes to journal_entries are blocked (write block #{id} since", error.MessageText);
        Assert.Contains("off by 0.01", error.MessageText);
        await RefusedAsync(database, "update journal_lines set debit_cents = debit_cents where tenant_id = 't-acme-bakery'");
        await RefusedAsync(database, "delete from ledger_accounts where tenant_id = 't-acme-bakery'");
        await RefusedAsync(database, "truncate journal_lines cascade");
        // Not even with ordinary triggers off.
        await RefusedAsync(database, "set session_replication_role = replica; delete from journal_lines where tenant_id = 't-summit-hvac'");
        // Not the application role either.
        await RefusedAsync(database, """
            begin; set local role clawkeeper_app; select set_config('app.tenant_id', 't-acme-bakery', true);
            insert into journal_entries (id, tenant_id) values ('je-app', 't-acme-bakery'); commit;
            """);

        Assert.True(await Sql.ScalarAsync<long>(database, "select count(*) from journal_lines") > 0);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from journal_entries where id like 'je-during-block'"));
        var status = await store.StatusAsync();
        Assert.Equal(id, status.Open!.Id);
        Assert.Equal("clawkeeper-heartbeat", status.Open.ImposedBy);
    }

    [Fact]
    public async Task Lifting_reopens_writes_and_both_steps_are_in_the_audit_trail()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var store = new WriteBlockStore(platform);
        var id = await store.ImposeAsync("audit_log_continuous: gap", "clawkeeper-heartbeat");

        await Assert.ThrowsAsync<PostgresException>(() => store.LiftAsync("super_admin:ops", "  "));
        Assert.Equal(id, await store.LiftAsync("super_admin:ops", "chain restored from backup"));
        Assert.Null(await store.LiftAsync("super_admin:ops", "again"));

        await Sql.ExecuteAsync(database, InsertEntry);
        var lifted = (await store.StatusAsync()).Find(id)!;
        Assert.Null((await store.StatusAsync()).Open);
        Assert.Equal("super_admin:ops", lifted.LiftedBy);
        Assert.Equal("chain restored from backup", lifted.LiftReason);

        var trail = await Sql.RowsAsync(database,
            "select action, actor, entity_id, payload->>'reason' from audit_log where tenant_id = 'system' and entity_type = 'write_block' order by seq");
        Assert.Equal(new object?[] { "write_block.imposed", "clawkeeper-heartbeat", id.ToString(), "audit_log_continuous: gap" }, trail[0]);
        Assert.Equal(new object?[] { "write_block.lifted", "super_admin:ops", id.ToString(), "chain restored from backup" }, trail[1]);
    }
}
