using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

public class FinancialTotalsBalanceCheckSpec
{
    private static Task<CheckResult> Run(NpgsqlDataSource platform, CheckContext context) =>
        Integrity.RunAsync(new FinancialTotalsBalanceCheck(platform, Integrity.Settings), context);

    private static async Task<(string Database, long LineId, string EntryId)> DebitLineAsync(string tenant)
    {
        var database = await TestDatabases.CreateSeededAsync();
        var row = (await Sql.RowsAsync(database,
            "select id, entry_id from journal_lines where tenant_id = $1 and debit_cents > 0 order by id limit 1", tenant))[0];
        return (database, (long)row[0]!, (string)row[1]!);
    }

    [Fact]
    public async Task The_seeded_books_balance_and_new_balanced_entries_keep_them_balanced()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var full = await Run(platform, Integrity.Full);
        Assert.Equal(CheckStatus.Pass, full.Status);
        Assert.Equal("4 tenants balanced (full recount)", full.Observed);
        var watermarks = IntegrityWatermarks.None.Advance(new[] { full.Progress! }, true, DateTimeOffset.UtcNow);

        await Sql.ExecuteAsync(database, """
            begin; select set_config('app.tenant_id', 't-acme-bakery', true);
            insert into journal_entries (id, tenant_id, description) values ('je-new', 't-acme-bakery', 'flour');
            insert into journal_lines (tenant_id, entry_id, account_id, debit_cents, credit_cents)
            select 't-acme-bakery', 'je-new', id, 12345, 0 from ledger_accounts where tenant_id = 't-acme-bakery' and type = 'expense' limit 1;
            insert into journal_lines (tenant_id, entry_id, account_id, debit_cents, credit_cents)
            select 't-acme-bakery', 'je-new', id, 0, 12345 from ledger_accounts where tenant_id = 't-acme-bakery' and type = 'asset' limit 1;
            commit;
            """);
        var incremental = await Run(platform, Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Pass, incremental.Status);
        Assert.Contains("entries written since the last verified round (2 line(s))", incremental.Observed);
        Assert.True(((LedgerProgress)incremental.Progress!).LastLineId > watermarks.LedgerLineId);
    }

    [Fact]
    public async Task An_unbalanced_new_entry_is_named_with_its_difference()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var watermarks = await Integrity.VerifiedWatermarksAsync(platform);
        await Sql.ExecuteAsync(database, """
            begin; select set_config('app.tenant_id', 't-summit-hvac', true);
            insert into journal_entries (id, tenant_id, description) values ('je-lopsided', 't-summit-hvac', 'half an entry');
            insert into journal_lines (tenant_id, entry_id, account_id, debit_cents, credit_cents)
            select 't-summit-hvac', 'je-lopsided', id, 5000, 0 from ledger_accounts where tenant_id = 't-summit-hvac' and type = 'asset' limit 1;
            commit;
            """);
        var result = await Run(platform, Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("tenant t-summit-hvac: debits", result.Detail);
        Assert.Contains("(difference 50.00)", result.Detail);
        Assert.Contains("tenant t-summit-hvac: entry je-lopsided off by 50.00", result.Detail);
    }

    [Fact]
    public async Task A_line_changed_through_the_database_unbalances_the_running_totals_at_once()
    {
        var (database, lineId, entryId) = await DebitLineAsync("t-northwind-legal");
        await using var platform = NpgsqlDataSource.Create(database);
        var watermarks = await Integrity.VerifiedWatermarksAsync(platform);
        await Sql.ExecuteAsync(database, "update journal_lines set debit_cents = debit_cents + 1 where id = $1", lineId);

        var incremental = await Run(platform, Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Fail, incremental.Status);
        Assert.Contains("tenant t-northwind-legal: debits", incremental.Detail);
        Assert.Contains("(difference 0.01)", incremental.Detail);

        var full = await Run(platform, Integrity.Full);
        Assert.Contains($"tenant t-northwind-legal: entry {entryId} off by 0.01", full.Detail);
    }

    [Fact]
    public async Task A_line_changed_behind_the_triggers_is_caught_by_the_next_round_and_the_full_recount()
    {
        var (database, lineId, entryId) = await DebitLineAsync("t-acme-bakery");
        await using var platform = NpgsqlDataSource.Create(database);
        var watermarks = await Integrity.VerifiedWatermarksAsync(platform);
        await Integrity.TamperAsync(database, "update journal_lines set debit_cents = debit_cents + 100 where id = $1", lineId);

        // The running totals never saw it; the recount and the changed line's entry do.
        var incremental = await Run(platform, Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Fail, incremental.Status);
        Assert.Contains("disagree with the running totals", incremental.Detail);
        Assert.Contains($"journal_lines id {lineId} (entry {entryId}) written by transaction", incremental.Detail);
        var full = await Run(platform, Integrity.Full);
        Assert.Equal(CheckStatus.Fail, full.Status);
        Assert.Contains("tenant t-acme-bakery: the journal lines (debits", full.Detail);
        Assert.Contains("disagree with the running totals", full.Detail);
        Assert.Contains($"entry {entryId} off by 1.00", full.Detail);
    }

    [Fact]
    public async Task Two_entries_unbalanced_in_opposite_directions_behind_the_triggers_are_both_named_by_the_full_verification()
    {
        // +5.00 on a debit line of one entry and +5.00 on a credit line of another entry of the same tenant, behind the
        // triggers: the tenant's debits and credits both grow by 5.00, so debits = credits still holds; only the
        // per-entry balance tells (the weighted sums first, then the exact query that names both entries).
        var database = await TestDatabases.CreateSeededAsync();
        var debit = (await Sql.RowsAsync(database,
            "select id, entry_id from journal_lines where tenant_id = 't-acme-bakery' and debit_cents > 0 order by id limit 1"))[0];
        var credit = (await Sql.RowsAsync(database,
            "select id, entry_id from journal_lines where tenant_id = 't-acme-bakery' and credit_cents > 0 and entry_id <> $1 order by id limit 1", (string)debit[1]!))[0];
        await Integrity.TamperAsync(database, "update journal_lines set debit_cents = debit_cents + 500 where id = $1", (long)debit[0]!);
        await Integrity.TamperAsync(database, "update journal_lines set credit_cents = credit_cents + 500 where id = $1", (long)credit[0]!);
        await using var platform = NpgsqlDataSource.Create(database);

        var full = await Run(platform, Integrity.Full);
        Assert.Equal(CheckStatus.Fail, full.Status);
        Assert.Contains($"tenant t-acme-bakery: entry {debit[1]} off by 5.00", full.Detail);
        Assert.Contains($"tenant t-acme-bakery: entry {credit[1]} off by -5.00", full.Detail);
    }
}
