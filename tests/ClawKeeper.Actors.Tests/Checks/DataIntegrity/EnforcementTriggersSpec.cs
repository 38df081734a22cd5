using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Platform.WriteBlocks;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>
/// Enforcement switched off quietly is a failure: every guard, running-totals, audit and foreign-key trigger
/// set to ENABLE REPLICA (ordinary sessions no longer fire it), or an ALWAYS one set back to a plain ENABLE, is
/// reported by <c>no_orphaned_records</c> like a disabled one; the write-block guard puts its triggers back to
/// ALWAYS each round; TRUNCATE of the books keeps the running totals right (real PostgreSQL, seeded platform).
/// </summary>
public class EnforcementTriggersSpec
{
    public static TheoryData<string, string, string> Triggers()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var trigger in EnforcementTriggers.Platform) data.Add(trigger.Table, trigger.Trigger, trigger.Enforces);
        return data;
    }

    private static async Task<CheckResult> NoOrphansAsync(string database)
    {
        await using var platform = NpgsqlDataSource.Create(database);
        return await Integrity.RunAsync(new NoOrphanedRecordsCheck(platform, Integrity.Settings), Integrity.Full);
    }

    [Fact]
    public async Task The_migrated_platform_has_every_enforcement_trigger_as_expected()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var connection = await Sql.OpenAsync(database);
        Assert.Empty(await EnforcementTriggers.ProblemsAsync(connection, EnforcementTriggers.Platform, includeOthers: true, CancellationToken.None));
        var result = await NoOrphansAsync(database);
        Assert.True(result.Status == CheckStatus.Pass, result.Detail);
    }

    [Theory]
    [MemberData(nameof(Triggers))]
    public async Task A_trigger_set_to_ENABLE_REPLICA_is_reported_like_a_disabled_one(string table, string trigger, string enforces)
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, $"alter table {table} enable replica trigger {trigger}");

        var result = await NoOrphansAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains($"{table}: trigger {trigger} ({enforces}) ENABLE REPLICA (ordinary sessions no longer fire it)", result.Detail);
    }

    [Theory]
    [MemberData(nameof(Triggers))]
    public async Task A_trigger_disabled_or_taken_from_ALWAYS_to_a_plain_ENABLE_is_reported(string table, string trigger, string enforces)
    {
        var database = await TestDatabases.CreateSeededAsync();
        var always = EnforcementTriggers.Platform.Single(t => t.Table == table && t.Trigger == trigger).Always;
        await Sql.ExecuteAsync(database, always ? $"alter table {table} enable trigger {trigger}" : $"alter table {table} disable trigger {trigger}");

        var result = await NoOrphansAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains(always
            ? $"{table}: trigger {trigger} ({enforces}) enabled (ordinary sessions only), must be ENABLE ALWAYS"
            : $"{table}: trigger {trigger} ({enforces}) disabled", result.Detail);
    }

    [Fact]
    public async Task Foreign_key_triggers_set_to_ENABLE_REPLICA_are_reported()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            do $$
            declare t text;
            begin
                for t in select tgname from pg_trigger where tgrelid = 'journal_lines'::regclass loop
                    execute format('alter table journal_lines enable replica trigger %I', t);
                end loop;
            end
            $$
            """);

        var result = await NoOrphansAsync(database);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("journal_lines: 6 foreign-key enforcement trigger(s) ENABLE REPLICA", result.Detail);
        Assert.Contains("trigger ledger_balances_after_insert (running totals) ENABLE REPLICA", result.Detail);
    }

    [Theory]
    [InlineData("enable replica trigger write_block_guard")]
    [InlineData("enable trigger write_block_guard")]
    [InlineData("disable trigger write_block_guard")]
    public async Task The_write_block_guard_puts_its_triggers_back_to_ALWAYS_each_round(string change)
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var guard = new PlatformWriteBlockGuard(platform);
        Assert.Empty((await guard.ReconcileAsync(WriteBlockState.None, null, DateTimeOffset.UtcNow, CancellationToken.None)).Actions);

        await Sql.ExecuteAsync(database, $"alter table journal_lines {change}");
        var outcome = await guard.ReconcileAsync(WriteBlockState.None, null, DateTimeOffset.UtcNow, CancellationToken.None);
        var action = Assert.Single(outcome.Actions);
        Assert.Equal("write_block_triggers", action.Action);
        Assert.Contains("journal_lines: trigger write_block_guard (write-block guard)", action.Detail);
        Assert.Equal("restored: journal_lines.write_block_guard ENABLE ALWAYS again", action.Outcome);
        Assert.Equal("A", await Sql.ScalarAsync<string>(database,
            "select tgenabled::text from pg_trigger where tgrelid = 'journal_lines'::regclass and tgname = 'write_block_guard'"));

        // Enforced again: with a block open, a replica-mode session cannot write the books.
        await new WriteBlockStore(platform).ImposeAsync("spec", "spec");
        var refused = await Assert.ThrowsAsync<PostgresException>(() =>
            Integrity.TamperAsync(database, "update journal_lines set debit_cents = debit_cents where id = (select min(id) from journal_lines)"));
        Assert.Equal(WriteBlockStore.BlockedSqlState, refused.SqlState);
    }

    [Fact]
    public async Task A_dropped_guard_trigger_that_cannot_be_restored_is_reported_as_not_enforced()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        await Sql.ExecuteAsync(database, "drop trigger write_block_guard_truncate on ledger_accounts");

        var action = Assert.Single((await new PlatformWriteBlockGuard(platform).ReconcileAsync(WriteBlockState.None, null, DateTimeOffset.UtcNow, CancellationToken.None)).Actions);
        Assert.StartsWith("NOT ENFORCED: ledger_accounts: trigger write_block_guard_truncate (write-block guard) missing", action.Outcome);
    }

    private static async Task<long> BalanceRowsAsync(string database) => await Sql.ScalarAsync<long>(database, "select count(*) from ledger_balances");

    [Theory]
    [InlineData(false, "truncate journal_lines")]
    [InlineData(true, "truncate journal_lines")]
    [InlineData(false, "truncate journal_entries cascade")]
    [InlineData(true, "truncate ledger_accounts cascade")]
    public async Task TRUNCATE_of_the_lines_empties_the_running_totals_with_them_even_in_replica_mode(bool replica, string truncate)
    {
        var database = await TestDatabases.CreateSeededAsync();
        Assert.True(await BalanceRowsAsync(database) > 0);
        if (replica) await Integrity.TamperAsync(database, truncate);
        else await Sql.ExecuteAsync(database, truncate);

        Assert.Equal(0, await Sql.ScalarAsync<long>(database, "select count(*) from journal_lines"));
        Assert.Equal(0, await BalanceRowsAsync(database));
        await using var platform = NpgsqlDataSource.Create(database);
        var books = await Integrity.RunAsync(new FinancialTotalsBalanceCheck(platform, Integrity.Settings), Integrity.Full);
        Assert.NotEqual(CheckStatus.Fail, books.Status);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TRUNCATE_of_the_running_totals_alone_is_refused(bool replica)
    {
        var database = await TestDatabases.CreateSeededAsync();
        var before = await BalanceRowsAsync(database);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => replica
            ? Integrity.TamperAsync(database, "truncate ledger_balances")
            : Sql.ExecuteAsync(database, "truncate ledger_balances"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        Assert.Contains("TRUNCATE refused", refused.MessageText);
        Assert.Equal(before, await BalanceRowsAsync(database));
    }
}
