using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>
/// Every way a row of the books or the audit trail can change after a verified round — replica mode, the
/// application role, an explicit low id, a late commit, offsetting edits, TRUNCATE, DELETE — is caught by the
/// next incremental round (real PostgreSQL, the seeded platform), with the row named.
/// </summary>
public class ChangeDetectionSpec
{
    private const string Tenant = "t-acme-bakery";

    private sealed record Line(long Id, string EntryId, long Debit);

    private static async Task<(string Database, NpgsqlDataSource Platform, IntegrityWatermarks Verified)> VerifiedAsync()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var platform = NpgsqlDataSource.Create(database);
        return (database, platform, await Integrity.VerifiedWatermarksAsync(platform));
    }

    /// <summary>Debit lines on asset accounts of <see cref="Tenant"/>, each of another entry.</summary>
    private static async Task<IReadOnlyList<Line>> AssetDebitsAsync(string database, int count)
    {
        var rows = await Sql.RowsAsync(database, """
            select id, entry_id, debit_cents from (
                select distinct on (l.entry_id) l.id, l.entry_id, l.debit_cents
                from journal_lines l join ledger_accounts a on a.id = l.account_id
                where l.tenant_id = $1 and a.type = 'asset' and l.debit_cents > 1000
                order by l.entry_id, l.id) x
            order by id limit $2
            """, Tenant, count);
        Assert.Equal(count, rows.Count);
        return rows.Select(r => new Line((long)r[0]!, (string)r[1]!, (long)r[2]!)).ToList();
    }

    private static Task<CheckResult> Ledger(NpgsqlDataSource platform, IntegrityWatermarks watermarks) =>
        Integrity.RunAsync(new FinancialTotalsBalanceCheck(platform, Integrity.Settings), Integrity.Incremental(watermarks));

    private static Task<CheckResult> Audit(NpgsqlDataSource platform, IntegrityWatermarks watermarks) =>
        Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Incremental(watermarks));

    [Fact]
    public async Task A_quiet_platform_passes_and_the_next_round_advances_its_horizon()
    {
        var (_, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        Assert.NotNull(verified.AuditHorizon);
        Assert.NotNull(verified.LedgerHorizon);
        Assert.NotNull(verified.LedgerLineCounts);

        var (results, next) = await Integrity.IncrementalRoundAsync(platform, verified);
        Assert.All(results, r => Assert.True(r.Status == CheckStatus.Pass, $"{r.Check}: {r.Observed} {r.Detail}"));
        Assert.Contains("(0 line(s))", results.Single(r => r.Check == "financial_totals_balance").Observed);
        Assert.StartsWith("0 entries verified (incremental)", results.Single(r => r.Check == "audit_log_continuous").Observed);
        Assert.True(next.LedgerHorizon >= verified.LedgerHorizon);
    }

    [Fact]
    public async Task A_line_changed_in_replica_mode_and_frozen_is_caught_by_the_next_round_and_every_retry()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var line = (await AssetDebitsAsync(database, 1))[0];
        await Sql.ExecuteAsync(database, "vacuum freeze journal_lines");
        await Integrity.TamperAsync(database, "update journal_lines set debit_cents = debit_cents + 2500 where id = $1", line.Id);
        // Freezing keeps the writer's transaction id in the tuple (PostgreSQL >= 9.4): still seen as changed.
        await Sql.ExecuteAsync(database, "vacuum freeze journal_lines");

        for (var attempt = 1; attempt <= 2; attempt++) // the retry round examines it again: the horizon did not move
        {
            var (results, next) = await Integrity.IncrementalRoundAsync(platform, verified);
            var ledger = results.Single(r => r.Check == "financial_totals_balance");
            Assert.Equal(CheckStatus.Fail, ledger.Status);
            Assert.Contains($"tenant {Tenant}: entry {line.EntryId} off by 25.00", ledger.Detail);
            Assert.Contains("disagree with the running totals", ledger.Detail);
            Assert.Matches($@"journal_lines id {line.Id} \(entry {line.EntryId}\) written by transaction \d+", ledger.Detail);
            Assert.Equal(verified.LedgerHorizon, next.LedgerHorizon);
            verified = next;
        }
    }

    [Fact]
    public async Task An_old_line_updated_by_the_application_role_is_named()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var line = (await AssetDebitsAsync(database, 1))[0];
        await Integrity.AsApplicationAsync(database, Tenant, "update journal_lines set debit_cents = debit_cents - 1 where id = $1", line.Id);

        var result = await Ledger(platform, verified);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains($"tenant {Tenant}: entry {line.EntryId} off by -0.01", result.Detail);
        Assert.Contains($"journal_lines id {line.Id} (entry {line.EntryId}) written by transaction", result.Detail);
    }

    [Fact]
    public async Task Two_offsetting_edits_that_keep_every_total_are_caught_by_their_entries()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var lines = await AssetDebitsAsync(database, 2);
        await Integrity.AsApplicationAsync(database, Tenant, $"""
            update journal_lines set debit_cents = debit_cents + 100 where id = {lines[0].Id};
            update journal_lines set debit_cents = debit_cents - 100 where id = {lines[1].Id};
            """);
        // The tenant's totals still balance and agree with the recount: only the entries tell.
        var result = await Ledger(platform, verified);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.StartsWith("0 tenant imbalance(s), 2 unbalanced entries", result.Observed);
        Assert.Contains($"entry {lines[0].EntryId} off by 1.00", result.Detail);
        Assert.Contains($"entry {lines[1].EntryId} off by -1.00", result.Detail);
    }

    [Fact]
    public async Task Lines_inserted_with_explicit_low_ids_are_examined()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var lines = await AssetDebitsAsync(database, 2);
        var account = await Sql.ScalarAsync<string>(database, "select account_id from journal_lines where id = $1", lines[0].Id);
        // GENERATED BY DEFAULT: ids below every verified one, balanced for the tenant, each entry off.
        await Integrity.AsApplicationAsync(database, Tenant, $"""
            insert into journal_lines (id, tenant_id, entry_id, account_id, debit_cents, credit_cents) values
                (0, '{Tenant}', '{lines[0].EntryId}', '{account}', 700, 0),
                (-1, '{Tenant}', '{lines[1].EntryId}', '{account}', 0, 700);
            """);
        var result = await Ledger(platform, verified);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains($"entry {lines[0].EntryId} off by 7.00", result.Detail);
        Assert.Contains($"entry {lines[1].EntryId} off by -7.00", result.Detail);
        Assert.Contains("journal_lines id -1 (entry", result.Detail);
    }

    [Fact]
    public async Task A_long_transaction_that_commits_after_a_verified_round_is_examined_by_the_next()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var lines = await AssetDebitsAsync(database, 2);
        var account = await Sql.ScalarAsync<string>(database, "select account_id from journal_lines where id = $1", lines[0].Id);

        // A second connection opens a transaction and writes a line (its id is taken now)...
        await using var slow = await Sql.OpenAsync(database);
        await Sql.ExecuteAsync(slow, "begin");
        await Sql.ExecuteAsync(slow, "set local role clawkeeper_app");
        await Sql.ExecuteAsync(slow, $"select set_config('app.tenant_id', '{Tenant}', true)");
        await Sql.ExecuteAsync(slow, $"insert into journal_lines (tenant_id, entry_id, account_id, debit_cents) values ('{Tenant}', '{lines[0].EntryId}', '{account}', 900)");
        var slowId = await Sql.ScalarAsync<long>(slow, "select max(id) from journal_lines");

        // ...others commit later lines of another tenant, and a round verifies past the slow line's id.
        await Integrity.AsApplicationAsync(database, "t-summit-hvac", """
            insert into journal_entries (id, tenant_id, description) values ('je-meanwhile', 't-summit-hvac', 'meanwhile');
            insert into journal_lines (tenant_id, entry_id, account_id, debit_cents, credit_cents)
            select 't-summit-hvac', 'je-meanwhile', id, 4200, 0 from ledger_accounts where tenant_id = 't-summit-hvac' and type = 'expense' limit 1;
            insert into journal_lines (tenant_id, entry_id, account_id, debit_cents, credit_cents)
            select 't-summit-hvac', 'je-meanwhile', id, 0, 4200 from ledger_accounts where tenant_id = 't-summit-hvac' and type = 'asset' limit 1;
            """);
        var (first, afterFirst) = await Integrity.IncrementalRoundAsync(platform, verified);
        Assert.All(first, r => Assert.True(r.Status == CheckStatus.Pass, $"{r.Check}: {r.Observed} {r.Detail}"));
        Assert.True(afterFirst.LedgerLineId > slowId, "the verified round moved past the open transaction's line id");

        // The slow transaction completes its mischief (offsetting, so the tenant's totals balance) and commits.
        await Sql.ExecuteAsync(slow, $"insert into journal_lines (tenant_id, entry_id, account_id, credit_cents) values ('{Tenant}', '{lines[1].EntryId}', '{account}', 900)");
        await Sql.ExecuteAsync(slow, "commit");

        var result = await Ledger(platform, afterFirst);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains($"entry {lines[0].EntryId} off by 9.00", result.Detail);
        Assert.Contains($"entry {lines[1].EntryId} off by -9.00", result.Detail);
        Assert.Contains($"journal_lines id {slowId} (entry {lines[0].EntryId}) written by transaction", result.Detail);
    }

    [Fact]
    public async Task Truncating_the_journal_lines_is_caught_by_the_recount_and_the_kept_counts()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var before = await Sql.ScalarAsync<long>(database, "select count(*) from journal_lines where tenant_id = $1", Tenant);
        // Migration 0007 empties the running totals with the lines, so the totals agree (both zero): the kept counts catch it.
        await Sql.ExecuteAsync(database, "truncate journal_lines");
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from ledger_balances"));

        var result = await Ledger(platform, verified);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains($"tenant {Tenant}: at least {before} journal line(s) verified in the last round are gone", result.Detail);
    }

    [Fact]
    public async Task Deleting_a_whole_balanced_entry_through_the_triggers_is_caught_by_the_kept_counts()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var line = (await AssetDebitsAsync(database, 1))[0];
        var count = await Sql.ScalarAsync<long>(database, "select count(*) from journal_lines where entry_id = $1", line.EntryId);
        // Every total stays consistent: the triggers take the lines out of the running totals, the entry is gone whole.
        await Integrity.AsApplicationAsync(database, Tenant, "delete from journal_lines where entry_id = $1", line.EntryId);

        var result = await Ledger(platform, verified);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.DoesNotContain("disagree with the running totals", result.Detail);
        Assert.Contains($"tenant {Tenant}: at least {count} journal line(s) verified in the last round are gone (deleted since", result.Detail);
    }

    [Fact]
    public async Task An_audit_entry_deleted_or_rewritten_deep_in_the_chain_is_caught_by_the_next_incremental_round()
    {
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        await Integrity.TamperAsync(database, "delete from audit_log where tenant_id = $1 and seq = 4", Tenant);
        var deleted = await Audit(platform, verified);
        Assert.Equal(CheckStatus.Fail, deleted.Status);
        Assert.Contains($"tenant {Tenant}: seq 4 missing (gap in the chain)", deleted.Detail);

        var (database2, platform2, verified2) = await VerifiedAsync();
        await using var _p2 = platform2;
        await Integrity.TamperAsync(database2, "update audit_log set actor = 'mallory' where tenant_id = $1 and seq = 2", Tenant);
        var rewritten = await Audit(platform2, verified2);
        Assert.Equal(CheckStatus.Fail, rewritten.Status);
        Assert.Contains($"tenant {Tenant}: seq 2 modified", rewritten.Detail);
        Assert.Matches($@"tenant {Tenant} seq 2 written by transaction \d+ \(commit time not recorded: track_commit_timestamp is off\)", rewritten.Detail);
    }

    [Fact]
    public async Task New_entries_alone_are_the_ordinary_range_and_a_rewrite_among_them_is_still_named()
    {
        const string Other = "t-harbor-dental";
        var (database, platform, verified) = await VerifiedAsync();
        await using var _p = platform;
        var append = $"""
            insert into audit_log (tenant_id, actor, action) values ('{Tenant}', 'carol', 'report.exported');
            insert into audit_log (tenant_id, actor, action) values ('{Tenant}', 'carol', 'report.printed');
            """;
        await Integrity.AsApplicationAsync(database, Tenant, append);
        await Integrity.AsApplicationAsync(database, Other, "insert into audit_log (tenant_id, actor, action) values ('t-harbor-dental', 'alice', 'invoice.sent')");

        // Only rows past the verified seqs were written: no verified entry is reported as changed.
        var quiet = await Audit(platform, verified);
        Assert.Equal(CheckStatus.Pass, quiet.Status);
        Assert.StartsWith("3 entries verified (incremental)", quiet.Observed);
        Assert.DoesNotContain("changed since", quiet.Observed);

        // The same new rows, and one verified entry deep in another tenant's chain rewritten: the counts of rows written
        // since no longer match the rows past the verified seqs, and the rewritten one is found and named.
        await Integrity.TamperAsync(database, "update audit_log set action = 'invoice.voided' where tenant_id = $1 and seq = 2", Other);
        var rewritten = await Audit(platform, verified);
        Assert.Equal(CheckStatus.Fail, rewritten.Status);
        Assert.Contains($"tenant {Other}: seq 2 modified", rewritten.Detail);
        Assert.Matches($@"tenant {Other} seq 2 written by transaction \d+", rewritten.Detail);
        Assert.DoesNotContain($"tenant {Tenant}:", rewritten.Detail);
    }
}
