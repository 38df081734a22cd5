using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>
/// <c>no_orphaned_records</c>: every declared foreign key of the platform exists, is validated and
/// enforced (its triggers enabled; a <c>NOT VALID</c> constraint, or a foreign-key or guard trigger
/// disabled, replica-only or no longer ALWAYS, see <see cref="EnforcementTriggers"/>, is a failure); the full verification also scans every foreign key for violating rows (rows written
/// while enforcement was off); soft references — <c>audit_log.entity_type/entity_id</c> and
/// <c>agent_runs.task_id</c> (heartbeat rows excepted) — have no missing parent.
/// </summary>
public sealed class NoOrphanedRecordsCheck(NpgsqlDataSource? platform, DataIntegritySettings settings) : PlatformQueryCheck(platform)
{
    /// <summary>The declared foreign keys of the platform schema: (child table, parent table).</summary>
    public static readonly IReadOnlyList<(string Child, string Parent)> ExpectedForeignKeys = new[]
    {
        ("tasks", "tenants"), ("agent_runs", "tenants"), ("audit_chain_heads", "tenants"), ("audit_log", "tenants"),
        ("ledger_accounts", "tenants"), ("journal_entries", "tenants"), ("journal_lines", "tenants"),
        ("journal_lines", "journal_entries"), ("journal_lines", "ledger_accounts"), ("ledger_balances", "tenants"),
        ("api_keys", "tenants"), ("security_events", "tenants"), ("integration_connections", "tenants"),
        ("integration_syncs", "tenants"), ("integration_syncs", "integration_connections"),
    };

    /// <summary>Soft references of <c>audit_log</c>: entity type → (table, id column).</summary>
    public static readonly IReadOnlyDictionary<string, (string Table, string Column)> AuditEntityTables = new Dictionary<string, (string, string)>
    {
        ["tenant"] = ("tenants", "id"),
        ["task"] = ("tasks", "id"),
        ["journal_entry"] = ("journal_entries", "id"),
        ["ledger_account"] = ("ledger_accounts", "id"),
        ["api_key"] = ("api_keys", "id"),
        ["integration_connection"] = ("integration_connections", "id"),
        ["write_block"] = ("write_blocks", "id::text"),
    };

    public override string Id => "no_orphaned_records";
    public override TimeSpan Timeout => settings.Timeout;
    protected override string Threshold => "every foreign key declared, validated and enforced; no row without its parent";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken)
    {
        var fingerprint = await PlatformFingerprint.ReadAsync(connection, cancellationToken).ConfigureAwait(false);
        var effective = context.EffectiveWatermarks.For(fingerprint);
        var full = context.FullVerification || effective.IsEmpty;
        var problems = new List<string>();

        // Declared foreign keys and their state.
        var declared = new List<(string Child, string Parent, string Name, bool Validated, string ChildColumns, string ParentColumns)>();
        await using (var command = Command(connection, """
            select c.conrelid::regclass::text, c.confrelid::regclass::text, c.conname, c.convalidated,
                   (select string_agg(quote_ident(a.attname), ',' order by k.ord) from unnest(c.conkey) with ordinality k(att, ord)
                      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.att),
                   (select string_agg(quote_ident(a.attname), ',' order by k.ord) from unnest(c.confkey) with ordinality k(att, ord)
                      join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.att)
            from pg_constraint c
            where c.contype = 'f' and c.connamespace = 'public'::regnamespace
            order by 1, 3
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                declared.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetBoolean(3), reader.GetString(4), reader.GetString(5)));

        foreach (var (child, parent) in ExpectedForeignKeys)
            if (!declared.Any(d => d.Child == child && d.Parent == parent))
                problems.Add($"{child} → {parent}: foreign key missing");
        foreach (var notValid in declared.Where(d => !d.Validated))
            problems.Add($"{notValid.Child}.{notValid.Name} → {notValid.Parent}: NOT VALID (existing rows were never checked)");

        // Enforcement switched off: foreign-key (internal) triggers and the platform's own guards disabled, set to
        // ENABLE REPLICA (ordinary sessions no longer fire them) or, for the ALWAYS ones, changed from ALWAYS.
        problems.AddRange(await EnforcementTriggers.ProblemsAsync(connection, EnforcementTriggers.Platform, includeOthers: true, cancellationToken).ConfigureAwait(false));

        // Rows that violate a declared foreign key: every key in a full verification, NOT VALID ones always.
        foreach (var fk in declared.Where(d => full || !d.Validated))
        {
            var childColumns = fk.ChildColumns.Split(',');
            var parentColumns = fk.ParentColumns.Split(',');
            var join = string.Join(" and ", childColumns.Zip(parentColumns, (c, p) => $"p.{p} = c.{c}"));
            var notNull = string.Join(" and ", childColumns.Select(c => $"c.{c} is not null"));
            await using var command = Command(connection, $"""
                select count(*) over ()::bigint, ({string.Join(" || '/' || ", childColumns.Select(c => $"c.{c}::text"))})
                from {fk.Child} c
                where {notNull} and not exists (select 1 from {fk.Parent} p where {join})
                limit @samples
                """, ("samples", settings.SampleSize));
            var (count, samples) = await CountWithSamplesAsync(command, cancellationToken).ConfigureAwait(false);
            if (count > 0)
                problems.Add($"{fk.Child}({fk.ChildColumns}) → {fk.Parent}: {count} orphaned row(s), e.g. {string.Join(", ", samples)}");
        }

        // Soft references of the audit trail, from the verified positions on (all in a full verification).
        var watermarks = effective.Audit;
        var tenants = watermarks.Keys.ToArray();
        foreach (var (entityType, (table, column)) in AuditEntityTables)
        {
            await using var command = Command(connection, $"""
                with verified as (select * from unnest(@tenants::text[], @seqs::bigint[]) as v(tenant_id, seq))
                select count(*) over ()::bigint, a.tenant_id || ':' || a.entity_id
                from audit_log a left join verified v on v.tenant_id = a.tenant_id
                where a.entity_type = @entity_type and a.seq > coalesce(v.seq, 0) and a.entity_id is not null
                  and not exists (select 1 from {table} p where p.{column} = a.entity_id)
                limit @samples
                """, ("tenants", tenants), ("seqs", tenants.Select(t => watermarks[t].Seq).ToArray()), ("entity_type", entityType), ("samples", settings.SampleSize));
            var (count, samples) = await CountWithSamplesAsync(command, cancellationToken).ConfigureAwait(false);
            if (count > 0)
                problems.Add($"audit_log({entityType}) → {table}: {count} entr{(count == 1 ? "y" : "ies")} about a missing {entityType}, e.g. {string.Join(", ", samples)}");
        }

        // Agent runs point at their task (the heartbeat's own rows are not tasks).
        var since = full || context.PreviousCompletedAt is null ? DateTimeOffset.MinValue : context.PreviousCompletedAt.Value.AddHours(-1);
        await using (var command = Command(connection, """
            select count(*) over ()::bigint, r.id || ' (task ' || r.task_id || ')'
            from agent_runs r
            where r.task_id is not null and r.started_at >= @since
              and not (r.agent_id = 'clawkeeper' and r.task_id like 'heartbeat-%')
              and not exists (select 1 from tasks t where t.id = r.task_id)
            limit @samples
            """, ("since", since == DateTimeOffset.MinValue ? DateTime.MinValue : since.UtcDateTime), ("samples", settings.SampleSize)))
        {
            var (count, samples) = await CountWithSamplesAsync(command, cancellationToken).ConfigureAwait(false);
            if (count > 0)
                problems.Add($"agent_runs.task_id → tasks: {count} run(s) of a missing task, e.g. {string.Join(", ", samples)}");
        }

        var mode = full ? "full scan" : "catalog + new rows";
        var observed = $"{declared.Count} foreign keys declared, {problems.Count} problem(s) ({mode})";
        return problems.Count == 0
            ? CheckOutcome.Pass(observed, Threshold, $"{ExpectedForeignKeys.Count} expected keys present and enforced; soft references of audit_log and agent_runs resolved")
            : CheckOutcome.Fail(observed, Threshold, string.Join("; ", problems.Take(settings.SampleSize * 2)) + (problems.Count > settings.SampleSize * 2 ? $"; and {problems.Count - settings.SampleSize * 2} more" : ""));
    }

    /// <summary>Reads <c>(count(*) over (), sample)</c> rows: the total and a few samples.</summary>
    private static async Task<(long Count, IReadOnlyList<string> Samples)> CountWithSamplesAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        long count = 0;
        var samples = new List<string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            count = reader.GetInt64(0);
            samples.Add(reader.GetString(1));
        }
        return (count, samples);
    }
}
