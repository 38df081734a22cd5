using System.Diagnostics;
using ClawKeeper.Actors.Checks.DataIntegrity;
using Npgsql;
using NpgsqlTypes;

namespace ClawKeeper.Benchmarks;

/// <summary>
/// Bulk seeding. The audit trigger (one locked head update and one SQL hash per row) is far too
/// slow for 10M rows, so audit_log is loaded with binary COPY under
/// <c>session_replication_role = replica</c> (ordinary and foreign-key triggers off) with
/// seq/prev_hash/hash computed here exactly as <c>audit_entry_hash</c> does; the chain heads and
/// the running ledger totals are then set from what was loaded. Non-essential indexes are dropped
/// during the load and rebuilt afterwards with their migration names and definitions (the primary
/// key of audit_log too: rebuilt by sort, then the checks find it as usual).
/// </summary>
public sealed class Seeder(string connectionString, SeedPlan plan, BenchOptions options, Action<string> log)
{
    public sealed record SeedTimings(
        TimeSpan Reference, TimeSpan AuditCopy, TimeSpan AuditIndexes, TimeSpan Journal, TimeSpan JournalIndexes,
        TimeSpan Balances, TimeSpan Verify, TimeSpan Vacuum)
    {
        public TimeSpan Total => Reference + AuditCopy + AuditIndexes + Journal + JournalIndexes + Balances + Verify + Vacuum;
    }

    public long SeededEntries { get; private set; }

    public async Task<SeedTimings> SeedAsync(CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { WriteBufferSize = 1 << 20, CommandTimeout = 0 };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(ct);
        await ExecAsync(connection, $"SET maintenance_work_mem = '{options.MaintenanceWorkMem}'", ct);

        var sw = Stopwatch.StartNew();
        await SeedReferenceDataAsync(connection, ct);
        var reference = Lap(sw);

        var heads = await CopyAuditAsync(connection, ct);
        var auditCopy = Lap(sw);
        log("  building audit_log indexes (primary key, occurred_at) ...");
        await ExecAsync(connection, "ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (tenant_id, seq)", ct);
        await ExecAsync(connection, "CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at)", ct);
        await using (var command = new NpgsqlCommand(
                         "INSERT INTO audit_chain_heads (tenant_id, last_seq, last_hash) SELECT * FROM unnest(@t::text[], @s::bigint[], @h::text[])", connection))
        {
            command.Parameters.AddWithValue("t", heads.Select(h => h.TenantId).ToArray());
            command.Parameters.AddWithValue("s", heads.Select(h => h.Seq).ToArray());
            command.Parameters.AddWithValue("h", heads.Select(h => h.Hash).ToArray());
            await command.ExecuteNonQueryAsync(ct);
        }

        var auditIndexes = Lap(sw);

        await CopyJournalAsync(connection, ct);
        var journal = Lap(sw);
        log("  building journal_lines indexes ...");
        await ExecAsync(connection, """
            CREATE INDEX journal_lines_entry_idx   ON journal_lines (entry_id);
            CREATE INDEX journal_lines_account_idx ON journal_lines (account_id);
            CREATE INDEX journal_lines_tenant_idx  ON journal_lines (tenant_id);
            """, ct);
        await ExecAsync(connection, $"SELECT setval(pg_get_serial_sequence('journal_lines', 'id'), {plan.JournalLines})", ct);
        var journalIndexes = Lap(sw);

        // The running totals the statement triggers would have kept (same query as migration 0002).
        await ExecAsync(connection, """
            INSERT INTO ledger_balances (tenant_id, account_type, debit_cents, credit_cents, line_count)
            SELECT l.tenant_id, a.type, sum(l.debit_cents), sum(l.credit_cents), count(*)
            FROM journal_lines l JOIN ledger_accounts a ON a.id = l.account_id AND a.tenant_id = l.tenant_id
            GROUP BY l.tenant_id, a.type
            """, ct);
        var balances = Lap(sw);

        await VerifyAsync(connection, heads, ct);
        var verify = Lap(sw);

        log("  VACUUM (ANALYZE) (sets hint bits and the visibility map, as autovacuum would have) ...");
        await ExecAsync(connection, "VACUUM (ANALYZE)", ct);
        await ExecAsync(connection, """
            ALTER TABLE audit_log RESET (autovacuum_enabled);
            ALTER TABLE journal_lines RESET (autovacuum_enabled);
            ALTER TABLE journal_entries RESET (autovacuum_enabled);
            """, ct);
        var vacuum = Lap(sw);
        return new SeedTimings(reference, auditCopy, auditIndexes, journal, journalIndexes, balances, verify, vacuum);
    }

    private async Task SeedReferenceDataAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        log($"  {plan.Tenants} tenants, {plan.Tenants * SeedPlan.Accounts.Length} ledger accounts ...");
        await using (var command = new NpgsqlCommand(
                         "INSERT INTO tenants (id, name) SELECT id, 'Tenant ' || id FROM unnest(@ids::text[]) AS t(id)", connection))
        {
            command.Parameters.AddWithValue("ids", plan.TenantIds);
            await command.ExecuteNonQueryAsync(ct);
        }

        await using (var command = new NpgsqlCommand("""
                         INSERT INTO ledger_accounts (id, tenant_id, code, name, type)
                         SELECT t.id || ':' || a.code, t.id, a.code, a.name, a.type
                         FROM unnest(@ids::text[]) AS t(id)
                         CROSS JOIN unnest(@codes::text[], @names::text[], @types::text[]) AS a(code, name, type)
                         """, connection))
        {
            command.Parameters.AddWithValue("ids", plan.TenantIds);
            command.Parameters.AddWithValue("codes", SeedPlan.Accounts.Select(a => a.Code).ToArray());
            command.Parameters.AddWithValue("names", SeedPlan.Accounts.Select(a => a.Name).ToArray());
            command.Parameters.AddWithValue("types", SeedPlan.Accounts.Select(a => a.Type).ToArray());
            await command.ExecuteNonQueryAsync(ct);
        }
    }

    private sealed record Head(string TenantId, long Seq, string Hash);

    private readonly List<(string Tenant, long Seq)> _sample = [];

    private async Task<List<Head>> CopyAuditAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        log($"  audit_log: {plan.AuditRows:N0} rows by binary COPY ({plan.Layout.ToString().ToLowerInvariant()} layout), hash chains computed in C# ...");
        await using var transaction = await connection.BeginTransactionAsync(ct);
        // replica: ordinary triggers (the chain trigger, append-only guard) and FK triggers are off.
        // TRUNCATE in the same transaction as COPY lets wal_level=minimal skip the WAL.
        await ExecAsync(connection, """
            SET LOCAL session_replication_role = replica;
            ALTER TABLE audit_log SET (autovacuum_enabled = false);
            DROP INDEX audit_log_occurred_at_idx;
            ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
            TRUNCATE audit_log;
            """, ct);

        var prevHash = Enumerable.Repeat(AuditEntryHasher.Genesis, plan.Tenants).ToArray();
        var hasher = new AuditEntryHasher();
        var sampleEvery = Math.Max(1, plan.AuditRows / 97);
        var unicodeSamples = 0;
        var nullSamples = 0;
        var sw = Stopwatch.StartNew();
        var reportEvery = Math.Max(1_000_000, plan.AuditRows / 10);
        await Task.Run(() =>
        {
            using var importer = connection.BeginBinaryImport(
                "COPY audit_log (tenant_id, seq, occurred_at, actor, action, entity_type, entity_id, payload, prev_hash, hash) FROM STDIN (FORMAT BINARY)");
            long written = 0;
            foreach (var (tenant, seq) in plan.AuditOrder())
            {
                ct.ThrowIfCancellationRequested();
                var row = plan.Audit(tenant, seq);
                var tenantId = plan.TenantIds[tenant];
                var hash = hasher.Hash(tenantId, seq, row.OccurredAtMicros, row.Actor, row.Action, row.EntityType, row.EntityId, row.Payload, prevHash[tenant]);
                importer.StartRow();
                importer.Write(tenantId, NpgsqlDbType.Text);
                importer.Write(seq, NpgsqlDbType.Bigint);
                importer.Write(row.OccurredAt, NpgsqlDbType.TimestampTz);
                importer.Write(row.Actor, NpgsqlDbType.Text);
                importer.Write(row.Action, NpgsqlDbType.Text);
                if (row.EntityType is null) importer.WriteNull(); else importer.Write(row.EntityType, NpgsqlDbType.Text);
                if (row.EntityId is null) importer.WriteNull(); else importer.Write(row.EntityId, NpgsqlDbType.Text);
                importer.Write(row.Payload, NpgsqlDbType.Jsonb);
                importer.Write(prevHash[tenant], NpgsqlDbType.Text);
                importer.Write(hash, NpgsqlDbType.Text);
                prevHash[tenant] = hash;

                if (written % sampleEvery == 0
                    || (row.Actor.Contains('ë', StringComparison.Ordinal) && unicodeSamples++ < 5)
                    || (row.EntityType is null && nullSamples++ < 5))
                    _sample.Add((tenantId, seq));
                if (++written % reportEvery == 0)
                    log($"    {written:N0} rows, {written / sw.Elapsed.TotalSeconds:N0} rows/s");
            }

            importer.Complete();
        }, ct);
        await transaction.CommitAsync(ct);
        log($"    {plan.AuditRows:N0} rows in {sw.Elapsed.TotalSeconds:N1} s ({plan.AuditRows / sw.Elapsed.TotalSeconds:N0} rows/s)");

        return Enumerable.Range(0, plan.Tenants)
            .Where(t => plan.ChainLength(t) > 0)
            .Select(t => new Head(plan.TenantIds[t], plan.ChainLength(t), prevHash[t]))
            .ToList();
    }

    private async Task CopyJournalAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        log($"  journal: {plan.JournalLines:N0} lines in balanced entries by binary COPY ...");
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await ExecAsync(connection, """
            SET LOCAL session_replication_role = replica;
            ALTER TABLE journal_lines SET (autovacuum_enabled = false);
            ALTER TABLE journal_entries SET (autovacuum_enabled = false);
            DROP INDEX journal_lines_entry_idx;
            DROP INDEX journal_lines_account_idx;
            DROP INDEX journal_lines_tenant_idx;
            TRUNCATE journal_lines, journal_entries;
            """, ct);
        var sw = Stopwatch.StartNew();
        long entries = 0;
        await Task.Run(() =>
        {
            using (var importer = connection.BeginBinaryImport("COPY journal_entries (id, tenant_id, posted_at, description) FROM STDIN (FORMAT BINARY)"))
            {
                foreach (var entry in plan.Entries(plan.JournalLines, "je-", 1, SeedPlan.Epoch))
                {
                    ct.ThrowIfCancellationRequested();
                    importer.StartRow();
                    importer.Write(entry.Id, NpgsqlDbType.Text);
                    importer.Write(plan.TenantIds[entry.Tenant], NpgsqlDbType.Text);
                    importer.Write(entry.PostedAt, NpgsqlDbType.TimestampTz);
                    importer.Write("benchmark entry", NpgsqlDbType.Text);
                    entries++;
                }

                importer.Complete();
            }

            using (var importer = connection.BeginBinaryImport(
                       "COPY journal_lines (id, tenant_id, entry_id, account_id, debit_cents, credit_cents) FROM STDIN (FORMAT BINARY)"))
            {
                foreach (var entry in plan.Entries(plan.JournalLines, "je-", 1, SeedPlan.Epoch))
                {
                    ct.ThrowIfCancellationRequested();
                    var tenantId = plan.TenantIds[entry.Tenant];
                    foreach (var line in entry.Lines)
                    {
                        importer.StartRow();
                        importer.Write(line.Id, NpgsqlDbType.Bigint);
                        importer.Write(tenantId, NpgsqlDbType.Text);
                        importer.Write(entry.Id, NpgsqlDbType.Text);
                        importer.Write(line.AccountId, NpgsqlDbType.Text);
                        importer.Write(line.DebitCents, NpgsqlDbType.Bigint);
                        importer.Write(line.CreditCents, NpgsqlDbType.Bigint);
                    }
                }

                importer.Complete();
            }
        }, ct);
        await transaction.CommitAsync(ct);
        SeededEntries = entries;
        log($"    {entries:N0} entries, {plan.JournalLines:N0} lines in {sw.Elapsed.TotalSeconds:N1} s");
    }

    /// <summary>Never measure a broken data set: recompute a sample of hashes and links in SQL with
    /// the schema's own function, compare every chain head with its last entry, count the rows and
    /// check the books.</summary>
    private async Task VerifyAsync(NpgsqlConnection connection, List<Head> heads, CancellationToken ct)
    {
        log($"  verifying the seed: {_sample.Count} sampled entries recomputed with audit_entry_hash, chain heads, counts, books ...");
        await using (var command = new NpgsqlCommand("""
                         SELECT count(*),
                                count(*) FILTER (WHERE audit_entry_hash(a.tenant_id, a.seq, a.occurred_at, a.actor, a.action,
                                                                        a.entity_type, a.entity_id, a.payload, a.prev_hash) = a.hash),
                                count(*) FILTER (WHERE a.prev_hash = coalesce(p.hash, repeat('0', 64))),
                                count(*) FILTER (WHERE a.entity_type IS NULL),
                                count(*) FILTER (WHERE octet_length(a.actor) <> length(a.actor))
                         FROM unnest(@t::text[], @s::bigint[]) AS s(tenant_id, seq)
                         JOIN audit_log a ON a.tenant_id = s.tenant_id AND a.seq = s.seq
                         LEFT JOIN audit_log p ON p.tenant_id = a.tenant_id AND p.seq = a.seq - 1
                         """, connection))
        {
            command.Parameters.AddWithValue("t", _sample.Select(s => s.Tenant).ToArray());
            command.Parameters.AddWithValue("s", _sample.Select(s => s.Seq).ToArray());
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            var (found, hashes, links, nulls, unicode) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
            if (found != _sample.Count || hashes != found || links != found)
                throw new InvalidOperationException(
                    $"seed verification failed: {found}/{_sample.Count} sampled entries found, {hashes} hashes recompute, {links} links hold");
            if (nulls == 0 || unicode == 0)
                throw new InvalidOperationException($"the sample lacks NULL-entity ({nulls}) or non-ASCII ({unicode}) entries");
            log($"    {found} sampled entries: every hash recomputes in SQL and links to its predecessor ({nulls} with NULL fields, {unicode} non-ASCII)");
        }

        var headsOk = await ScalarAsync<long>(connection, """
            SELECT count(*) FROM audit_chain_heads h
            JOIN LATERAL (SELECT seq, hash FROM audit_log a WHERE a.tenant_id = h.tenant_id ORDER BY seq DESC LIMIT 1) m
              ON m.seq = h.last_seq AND m.hash = h.last_hash
            """, ct);
        if (headsOk != heads.Count)
            throw new InvalidOperationException($"seed verification failed: {headsOk} of {heads.Count} chain heads match their last entry");

        var auditCount = await ScalarAsync<long>(connection, "SELECT count(*) FROM audit_log", ct);
        var lineCount = await ScalarAsync<long>(connection, "SELECT count(*) FROM journal_lines", ct);
        if (auditCount != plan.AuditRows || lineCount != plan.JournalLines)
            throw new InvalidOperationException($"seed verification failed: {auditCount} audit rows, {lineCount} journal lines");

        var unbalancedTenants = await ScalarAsync<long>(connection, """
            SELECT count(*) FROM (SELECT tenant_id FROM ledger_balances GROUP BY tenant_id HAVING sum(debit_cents) <> sum(credit_cents)) x
            """, ct);
        var keptLines = await ScalarAsync<long>(connection, "SELECT coalesce(sum(line_count), 0)::bigint FROM ledger_balances", ct);
        var typesUsed = await ScalarAsync<long>(connection, "SELECT count(DISTINCT account_type) FROM ledger_balances", ct);
        if (unbalancedTenants != 0 || keptLines != plan.JournalLines || typesUsed != 5)
            throw new InvalidOperationException(
                $"seed verification failed: {unbalancedTenants} unbalanced tenants, running totals count {keptLines} lines, {typesUsed} account types used");
        log($"    {heads.Count} chain heads match, {auditCount:N0} audit rows, {lineCount:N0} lines, books balanced over all 5 account types");
    }

    private static TimeSpan Lap(Stopwatch sw)
    {
        var elapsed = sw.Elapsed;
        sw.Restart();
        return elapsed;
    }

    internal static async Task ExecAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(ct);
    }

    internal static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }
}
