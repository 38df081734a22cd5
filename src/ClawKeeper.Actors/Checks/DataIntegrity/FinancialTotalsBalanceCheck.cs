using System.Collections.Immutable;
using System.Globalization;
using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>One tenant's books by account type, in cents (signed: debit minus credit).</summary>
public sealed record TenantBooks(string TenantId, long Assets, long Liabilities, long Equity, long Revenue, long Expenses, long Debits, long Credits)
{
    /// <summary>assets = liabilities + equity, with revenue and expenses folded into equity; equivalently debits = credits.</summary>
    public long Difference => Debits - Credits;

    public static string Money(long cents) => (cents / 100m).ToString("#,##0.00", CultureInfo.InvariantCulture);

    public string Describe() =>
        $"tenant {TenantId}: debits {Money(Debits)} vs credits {Money(Credits)} (difference {Money(Difference)}); " +
        $"assets {Money(Assets)} vs liabilities + equity {Money(Liabilities + Equity + Revenue - Expenses)}";
}

/// <summary>
/// <c>financial_totals_balance</c>: per tenant, assets = liabilities + equity exactly, in cents, and
/// every journal entry balances on its own. Every round reads the running totals
/// (<c>ledger_balances</c>, kept by triggers) and recounts the lines against them per tenant and
/// account type (a line changed, deleted or truncated behind the triggers' back shows there); the
/// steady state checks the entries with a line or entry row written since the last verified round
/// (<see cref="ChangeHorizon"/>: whatever its id or commit order) and the lines kept per tenant
/// (deletions through the triggers); the full verification checks every entry. docs/integrity.md.
/// </summary>
public sealed class FinancialTotalsBalanceCheck(NpgsqlDataSource? platform, DataIntegritySettings settings) : PlatformQueryCheck(platform)
{
    public override string Id => "financial_totals_balance";
    public override TimeSpan Timeout => settings.Timeout;
    protected override string Threshold => "per tenant assets = liabilities + equity (debits = credits) exactly in cents; every entry balances";

    private const string BooksByTenant = """
        select tenant_id,
               coalesce(sum(debit_cents - credit_cents) filter (where account_type = 'asset'), 0)::bigint,
               coalesce(sum(credit_cents - debit_cents) filter (where account_type = 'liability'), 0)::bigint,
               coalesce(sum(credit_cents - debit_cents) filter (where account_type = 'equity'), 0)::bigint,
               coalesce(sum(credit_cents - debit_cents) filter (where account_type = 'revenue'), 0)::bigint,
               coalesce(sum(debit_cents - credit_cents) filter (where account_type = 'expense'), 0)::bigint,
               coalesce(sum(debit_cents), 0)::bigint, coalesce(sum(credit_cents), 0)::bigint
        from {0}
        group by tenant_id
        order by tenant_id
        """;

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken)
    {
        var fingerprint = await PlatformFingerprint.ReadAsync(connection, cancellationToken).ConfigureAwait(false);
        var fingerprintChange = context.Anchors.FingerprintChange(fingerprint);
        var effective = context.EffectiveWatermarks.For(fingerprint);
        var full = context.FullVerification || effective.LedgerLineId == 0;
        var fromLineId = full ? 0 : effective.LedgerLineId;
        var problems = new List<string>();

        await using var snapshot = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        // First statement of the snapshot: its horizon is what the next round examines changes from.
        var horizon = await ChangeHorizon.ReadAsync(connection, full ? null : effective.LedgerHorizon, cancellationToken).ConfigureAwait(false);

        long lastLineId;
        await using (var command = Command(connection, "select coalesce(max(id), 0) from journal_lines"))
            lastLineId = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;

        var running = await ReadBooksAsync(connection, string.Format(CultureInfo.InvariantCulture, BooksByTenant, "ledger_balances"), cancellationToken).ConfigureAwait(false);
        foreach (var books in running.Values.Where(b => b.Difference != 0))
            problems.Add(books.Describe());

        // The running totals as kept, per tenant and account type (a small table).
        var balances = new Dictionary<(string Tenant, string Type), (long Debits, long Credits, long Lines)>();
        await using (var command = Command(connection, "select tenant_id, account_type, debit_cents, credit_cents, line_count from ledger_balances"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                balances[(reader.GetString(0), reader.GetString(1))] = (reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));

        // The lines against the running totals: a full verification recounts per tenant and account type. A quiet
        // incremental round makes one ungrouped pass over journal_lines (about a count(*)): the totals of all lines
        // against the sum of the running totals, and the lines verified last round that are neither unchanged nor
        // rewritten since (deleted); any difference, and any tenant with a verified line or an account written since,
        // gets the per-tenant recount that names it.
        Recount? recount = null;
        var keptLines = effective.LedgerLineCounts;
        if (full || horizon.Limit is null)
        {
            recount = await RecountAsync(connection, horizon, full ? 0 : fromLineId, balances, null, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await using var command = Command(connection, $"""
                select count(*)::bigint, coalesce(sum(l.debit_cents), 0)::bigint, coalesce(sum(l.credit_cents), 0)::bigint,
                       count(*) filter (where not {horizon.ChangedSql("l")})::bigint,
                       count(*) filter (where {horizon.ChangedSql("l")} and l.id <= @verified)::bigint
                from journal_lines l
                """, ("verified", fromLineId));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var (lines, debits, credits, unchanged, rewritten) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
            await reader.DisposeAsync().ConfigureAwait(false);
            var gone = keptLines is null ? 0 : keptLines.Values.Sum() - unchanged - rewritten;
            if (lines != balances.Values.Sum(b => b.Lines) || debits != balances.Values.Sum(b => b.Debits) || credits != balances.Values.Sum(b => b.Credits) || gone > 0)
                recount = await RecountAsync(connection, horizon, fromLineId, balances, null, cancellationToken).ConfigureAwait(false);
        }

        // Entries that do not balance on their own: all of them in a full verification, else every entry with a line
        // (or the entry row itself) written since the last verified round, whatever its id or commit order.
        var unbalanced = new List<string>();
        var changedRows = new List<(string Tenant, string Row)>();
        var changedLines = 0L;
        var recountTenants = new List<string>();
        if (full)
        {
            await using var command = Command(connection, """
              -- Aggregate first, order the few unbalanced entries after: with the LIMIT inside, the planner
              -- walks an index in entry order over every line (4 s at 2M lines, see the benchmark).
              with per_entry as materialized (
                  select tenant_id, entry_id, sum(debit_cents)::bigint - sum(credit_cents)::bigint as diff
                  from journal_lines group by tenant_id, entry_id)
              select tenant_id, entry_id, diff from per_entry where diff <> 0
              order by tenant_id, entry_id limit @limit
              """, ("limit", 50));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                unbalanced.Add($"tenant {reader.GetString(0)}: entry {reader.GetString(1)} off by {TenantBooks.Money(reader.GetInt64(2))}");
        }
        else
        {
            await using var command = Command(connection, $"""
                with changed as materialized (
                    select l.id, l.tenant_id, l.entry_id, l.xmin::text as xid, {horizon.CommitTimeSql("l")} as committed_at
                    from journal_lines l where {horizon.ChangedSql("l")}),
                entries as (
                    select entry_id from changed
                    union select e.id from journal_entries e where {horizon.ChangedSql("e")}),
                unbalanced as (
                    select l.tenant_id, l.entry_id, sum(l.debit_cents)::bigint - sum(l.credit_cents)::bigint as diff
                    from journal_lines l
                    where l.entry_id in (select entry_id from entries)
                    group by l.tenant_id, l.entry_id having sum(l.debit_cents) <> sum(l.credit_cents)
                    order by l.tenant_id, l.entry_id limit @limit)
                select 'unbalanced', tenant_id, entry_id, diff, null, null from unbalanced
                union all
                select 'count', null, null, (select count(*) from changed), null, null
                union all
                select 'line', tenant_id, 'journal_lines id ' || id || ' (entry ' || entry_id || ')', 0, xid, committed_at
                from (select * from changed where id <= @from_line order by id limit @sample) c
                union all
                select 'entry', tenant_id, 'journal_entries ' || id, 0, xmin::text, {horizon.CommitTimeSql("e")}
                from (select e.*, e.xmin from journal_entries e where {horizon.ChangedSql("e")} order by id limit @sample) e
                union all
                select 'account', tenant_id, 'ledger_accounts ' || id || ' (' || type || ')', 0, xmin::text, {horizon.CommitTimeSql("a")}
                from (select a.*, a.xmin from ledger_accounts a where {horizon.ChangedSql("a")} order by id limit @sample) a
                union all
                select 'recount', tenant_id, null, 0, null, null from (
                    select tenant_id from changed where id <= @from_line
                    union select a.tenant_id from ledger_accounts a where {horizon.ChangedSql("a")}) t
                """, ("from_line", fromLineId), ("limit", 50), ("sample", settings.SampleSize));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                switch (reader.GetString(0))
                {
                    case "unbalanced":
                        unbalanced.Add($"tenant {reader.GetString(1)}: entry {reader.GetString(2)} off by {TenantBooks.Money(reader.GetInt64(3))}");
                        break;
                    case "count":
                        changedLines = reader.GetInt64(3);
                        break;
                    case "recount":
                        recountTenants.Add(reader.GetString(1));
                        break;
                    default:
                        changedRows.Add((reader.GetString(1), $"{reader.GetString(2)} {ChangeHorizon.Describe(reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), horizon.CommitTimestamps)}"));
                        break;
                }
        }
        // Tenants with a verified line or an account written since: recounted per account type (a line or an account moved
        // between types keeps every sum above).
        if (recount is null && recountTenants.Count > 0)
            recount = await RecountAsync(connection, horizon, fromLineId, balances, recountTenants.ToArray(), cancellationToken).ConfigureAwait(false);
        if (recount is not null)
        {
            problems.AddRange(recount.Disagreements);
            if (!full && horizon.Limit is not null && keptLines is not null && recount.AllTenants)
                foreach (var (tenant, before) in keptLines.OrderBy(k => k.Key, StringComparer.Ordinal))
                {
                    recount.Lines.TryGetValue(tenant, out var now);
                    var gone = before - now.Unchanged - now.ChangedVerified;
                    if (gone > 0)
                        problems.Add($"tenant {tenant}: at least {gone} journal line(s) verified in the last round are gone (deleted since; {before} then, {now.Unchanged} unchanged and {now.ChangedVerified} rewritten now)");
                }
        }
        await snapshot.CommitAsync(cancellationToken).ConfigureAwait(false);

        var mode = full ? "full recount"
            : horizon.Limit is null ? $"running totals + recount + every entry: {horizon.Why}"
            : $"running totals + recount + entries written since the last verified round ({changedLines} line(s))";
        if (problems.Count + unbalanced.Count > 0)
        {
            var all = problems.Concat(unbalanced).ToList();
            var affected = all.Select(TenantOf).Where(t => t is not null).ToHashSet(StringComparer.Ordinal);
            var notes = changedRows.Where(r => affected.Contains(r.Tenant)).Take(settings.SampleSize).Select(r => $"tenant {r.Tenant}: {r.Row}").ToList();
            return CheckOutcome.Fail(
                $"{problems.Count} tenant imbalance(s), {unbalanced.Count}{(unbalanced.Count == 50 ? "+" : "")} unbalanced entr{(unbalanced.Count == 1 ? "y" : "ies")} ({mode})",
                Threshold,
                string.Join("; ", all.Take(settings.SampleSize)) + (all.Count > settings.SampleSize ? $"; and {all.Count - settings.SampleSize} more" : "")
                    + (notes.Count > 0 ? "; changed since the last verified round: " + string.Join(", ", notes) : ""));
        }
        if (running.Count == 0 && lastLineId == 0)
            return CheckOutcome.Warn("0 journal lines", Threshold, "no journal line exists yet: nothing to verify");
        // Lines per tenant as verified: recounted, or (a quiet round, totals equal) as the running totals count them.
        var lineCounts = recount is { AllTenants: true }
            ? recount.Lines.ToImmutableDictionary(l => l.Key, l => l.Value.Total, StringComparer.Ordinal)
            : balances.GroupBy(b => b.Key.Tenant).ToImmutableDictionary(g => g.Key, g => g.Sum(b => b.Value.Lines), StringComparer.Ordinal);
        var progress = new LedgerProgress(lastLineId, fingerprint, horizon.Snapshot, lineCounts);
        if (fingerprintChange is not null)
            return new CheckOutcome(CheckStatus.Warn, $"{running.Count} tenants balanced ({mode})", Threshold, fingerprintChange, progress);
        return new CheckOutcome(CheckStatus.Pass, $"{running.Count} tenants balanced ({mode})", Threshold,
            $"journal lines up to id {lastLineId}", progress);
    }

    private static string? TenantOf(string problem) =>
        problem.StartsWith("tenant ", StringComparison.Ordinal) && problem.IndexOf(':') is var colon and > 7 ? problem[7..colon] : null;

    /// <summary>Lines per tenant: all of them, those not written since the horizon, and those at or below the verified id written since.</summary>
    private readonly record struct LineCounts(long Total, long Unchanged, long ChangedVerified);

    private sealed record Recount(IReadOnlyList<string> Disagreements, IReadOnlyDictionary<string, LineCounts> Lines, bool AllTenants);

    /// <summary>
    /// The journal lines summed per tenant and account type (aggregated per account first, then joined to the few
    /// accounts) against the running totals per tenant and type, line counts included.
    /// </summary>
    private static async Task<Recount> RecountAsync(NpgsqlConnection connection, ChangeHorizon horizon, long verifiedLineId,
        IReadOnlyDictionary<(string Tenant, string Type), (long Debits, long Credits, long Lines)> balances, string[]? onlyTenants, CancellationToken cancellationToken)
    {
        var counted = new Dictionary<(string Tenant, string Type), (long Debits, long Credits, long Lines)>();
        var lines = new Dictionary<string, LineCounts>(StringComparer.Ordinal);
        await using (var command = Command(connection, $"""
            with per_account as (
                select l.tenant_id, l.account_id, sum(l.debit_cents)::bigint as d, sum(l.credit_cents)::bigint as c, count(*)::bigint as n,
                       count(*) filter (where not {horizon.ChangedSql("l")})::bigint as unchanged,
                       count(*) filter (where {horizon.ChangedSql("l")} and l.id <= @verified)::bigint as changed_verified
                from journal_lines l {(onlyTenants is null ? "" : "where l.tenant_id = any(@tenants)")} group by l.tenant_id, l.account_id)
            select p.tenant_id, coalesce(a.type, '(no account)'), sum(d)::bigint, sum(c)::bigint, sum(n)::bigint, sum(unchanged)::bigint, sum(changed_verified)::bigint
            from per_account p left join ledger_accounts a on a.id = p.account_id and a.tenant_id = p.tenant_id
            group by 1, 2
            """, ("verified", verifiedLineId), ("tenants", onlyTenants ?? Array.Empty<string>())))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var tenant = reader.GetString(0);
                counted[(tenant, reader.GetString(1))] = (reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
                var sofar = lines.GetValueOrDefault(tenant);
                lines[tenant] = new LineCounts(sofar.Total + reader.GetInt64(4), sofar.Unchanged + reader.GetInt64(5), sofar.ChangedVerified + reader.GetInt64(6));
            }

        var kept = onlyTenants is null ? balances : balances.Where(b => onlyTenants.Contains(b.Key.Tenant)).ToDictionary(b => b.Key, b => b.Value);

        var disagreements = new List<string>();
        foreach (var tenant in counted.Keys.Concat(kept.Keys).Select(k => k.Tenant).Distinct().Order(StringComparer.Ordinal))
        {
            var types = counted.Keys.Concat(kept.Keys).Where(k => k.Tenant == tenant).Select(k => k.Type).Distinct().Order(StringComparer.Ordinal)
                .Where(t => counted.GetValueOrDefault((tenant, t)) != kept.GetValueOrDefault((tenant, t)))
                .ToList();
            if (types.Count == 0) continue;
            var lineDebits = counted.Where(k => k.Key.Tenant == tenant).Sum(k => k.Value.Debits);
            var lineCredits = counted.Where(k => k.Key.Tenant == tenant).Sum(k => k.Value.Credits);
            var keptDebits = kept.Where(k => k.Key.Tenant == tenant).Sum(k => k.Value.Debits);
            var keptCredits = kept.Where(k => k.Key.Tenant == tenant).Sum(k => k.Value.Credits);
            var byType = string.Join(", ", types.Select(t =>
            {
                var c = counted.GetValueOrDefault((tenant, t));
                var k = kept.GetValueOrDefault((tenant, t));
                return $"{t}: {c.Lines} lines {TenantBooks.Money(c.Debits)}/{TenantBooks.Money(c.Credits)} vs kept {k.Lines} lines {TenantBooks.Money(k.Debits)}/{TenantBooks.Money(k.Credits)}";
            }));
            disagreements.Add($"tenant {tenant}: the journal lines (debits {TenantBooks.Money(lineDebits)}, credits {TenantBooks.Money(lineCredits)}) " +
                              $"disagree with the running totals (debits {TenantBooks.Money(keptDebits)}, credits {TenantBooks.Money(keptCredits)}): lines were changed behind the ledger triggers ({byType})");
        }
        return new Recount(disagreements, lines, onlyTenants is null);
    }

    private static async Task<Dictionary<string, TenantBooks>> ReadBooksAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        var books = new Dictionary<string, TenantBooks>(StringComparer.Ordinal);
        await using var command = Command(connection, sql);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            books[reader.GetString(0)] = new TenantBooks(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
                reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7));
        return books;
    }
}
