using Npgsql;

namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>
/// <c>tenant_isolation</c>: a live probe, not a catalog lookup. For each sampled ordered pair
/// (viewer A, target B), in one transaction that is always rolled back:
/// <list type="number">
/// <item>as the monitoring role, note per tenant table whether A and other tenants have rows there;</item>
/// <item><c>SET LOCAL ROLE</c> the application role and <c>set_config('app.tenant_id', A, true)</c>;</item>
/// <item>in every tenant table (discovered: tables of schema public with a <c>tenant_id</c> column,
///   plus <c>tenants</c> by <c>id</c>, and every view or materialized view with a <c>tenant_id</c> column) count the rows of any other tenant that A can see — a row
///   seen is a leak; and if A has rows there but sees none of them, the probe is blind on that
///   table (no policy admits the tenant: isolation there cannot be shown, and the application is
///   broken for it);</item>
/// <item>try to insert a row for B into <c>security_events</c> and <c>tasks</c> (each inside a
///   savepoint): a write accepted is a leak.</item>
/// </list>
/// The pairs rotate across heartbeats (<see cref="IsolationPairs"/>). Any <c>tenant_isolation_failure</c>
/// recorded in <c>security_events</c> in this heartbeat's window fails the check too. Fewer than
/// two tenants (besides <c>system</c>) is a warn that says nothing could be probed, never a pass.
/// </summary>
public sealed class TenantIsolationCheck : PlatformQueryCheck
{
    public const string FailureEventKind = "tenant_isolation_failure";
    public const string SystemTenant = "system";

    /// <summary>Leaked rows are counted up to this many per table and viewer (a leak is a leak).</summary>
    private const int LeakCountCap = 1000;

    private readonly SecurityPostureSettings _settings;
    private readonly EventWatermark _watermark;
    private readonly object _roundGate = new();
    private long? _nextRound;

    /// <param name="firstRound">Rotation position of the first run; null = derived from the first heartbeat id. Each later run moves one round on.</param>
    /// <param name="watermark">Where the event window starts; default: the last completed heartbeat.</param>
    public TenantIsolationCheck(NpgsqlDataSource? platform, SecurityPostureSettings settings, long? firstRound = null, EventWatermark? watermark = null)
        : base(platform)
    {
        _settings = settings;
        _nextRound = firstRound;
        _watermark = watermark ?? SecurityEvents.LastCompletedHeartbeat;
    }

    public override string Id => "tenant_isolation";
    public override TimeSpan Timeout => _settings.Timeout;

    protected override string Threshold =>
        $"acting as {_settings.ApplicationRole} for tenant A: no other tenant's row visible and no write for tenant B accepted in any tenant table; 0 {FailureEventKind} events since the last heartbeat";

    /// <summary>The rotation round of this run (the first from the heartbeat id unless given, then one more per run).</summary>
    private long NextRound(CheckContext context)
    {
        lock (_roundGate)
        {
            var round = _nextRound ?? IsolationPairs.StableRound(context.HeartbeatId);
            _nextRound = round + 1;
            return round;
        }
    }

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken)
    {
        var window = EventWindow.For(context.StartedAt, _watermark(context), _settings.FirstRunLookBack);
        var recorded = await SecurityEvents.GroupedAsync(connection, FailureEventKind, window, cancellationToken).ConfigureAwait(false);
        var recordedCount = recorded.Sum(g => g.Count);
        var recordedProblem = recordedCount > 0
            ? $"{recordedCount} {FailureEventKind} event(s) recorded in {window.Describe()}: {SecurityEvents.Describe(recorded, _settings.SampleSize)}"
            : null;

        if (!await RoleExistsAsync(connection, cancellationToken).ConfigureAwait(false))
            return WithRecorded(CheckOutcome.Error(Threshold,
                $"application role {_settings.ApplicationRole} does not exist: the isolation probe cannot act as it (clawkeeper.checks.security-posture.application-role)"), recordedProblem);

        var tenants = await TenantsAsync(connection, cancellationToken).ConfigureAwait(false);
        var tables = await TenantTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        if (tables.Count == 0)
            return WithRecorded(CheckOutcome.Error(Threshold, "0 tenant-scoped tables found in schema public: nothing could be probed (wrong database?)"), recordedProblem);

        var round = NextRound(context);
        var pairs = IsolationPairs.ForRound(tenants, round, _settings.IsolationPairsPerRound);
        if (pairs.Count == 0)
        {
            var why = $"{tenants.Count} tenant(s) besides '{SystemTenant}' ({(tenants.Count == 0 ? "none" : string.Join(", ", tenants))}): fewer than two, so no pair of tenants could be probed";
            if (recordedProblem is not null)
                return CheckOutcome.Fail($"0 pairs probed; {recordedCount} recorded failure(s)", Threshold, recordedProblem + "; " + why);
            return CheckOutcome.Warn("0 pairs probed", Threshold, why + $"; no {FailureEventKind} event in {window.Describe()}");
        }

        var findings = new List<Breach>();
        var inconclusive = new List<string>();
        var notes = new HashSet<string>(StringComparer.Ordinal);
        var tablesWithForeignRows = new HashSet<string>(StringComparer.Ordinal);
        var writesRefused = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var probe = await ProbePairAsync(connection, pair, tables, cancellationToken).ConfigureAwait(false);
            findings.AddRange(probe.Findings);
            inconclusive.AddRange(probe.Inconclusive);
            foreach (var note in probe.Notes) notes.Add(note);
            foreach (var table in probe.TablesWithForeignRows) tablesWithForeignRows.Add(table);
            foreach (var table in probe.WritesRefused) writesRefused.Add(table);
        }

        var probed = $"{pairs.Count} of {IsolationPairs.All(tenants).Count} ordered pairs probed this round ({string.Join(", ", pairs)}) over {tables.Count} tenant tables";
        var coverage = $"{tablesWithForeignRows.Count}/{tables.Count} tables held other tenants' rows to hide; writes for the target refused on {(writesRefused.Count == 0 ? "no table" : string.Join(", ", writesRefused.Order(StringComparer.Ordinal)))}";
        var noteText = notes.Count > 0 ? "; " + string.Join("; ", notes.Order(StringComparer.Ordinal)) : "";

        if (findings.Count > 0 || recordedProblem is not null)
        {
            var breached = findings.Select(f => f.Table).Distinct().Order(StringComparer.Ordinal).ToList();
            var parts = new List<string>();
            if (findings.Count > 0) parts.Add(DescribeBreaches(findings));
            if (recordedProblem is not null) parts.Add(recordedProblem);
            if (inconclusive.Count > 0) parts.Add("also not evaluated: " + Sample(inconclusive));
            parts.Add(probed);
            return CheckOutcome.Fail(
                $"{breached.Count} table(s) breached{(breached.Count > 0 ? $" ({string.Join(", ", breached)})" : "")}; {recordedCount} recorded failure(s)", Threshold,
                string.Join("; ", parts) + noteText);
        }

        if (inconclusive.Count > 0)
            return CheckOutcome.Error(Threshold, $"no breach seen, but part of the probe could not be evaluated: {Sample(inconclusive)}; {probed}{noteText}");

        return CheckOutcome.Pass($"0 tables breached; {pairs.Count} pair(s) × {tables.Count} tables probed; 0 recorded failures", Threshold,
            $"{probed}; {coverage}; no {FailureEventKind} event in {window.Describe()}{noteText}");
    }

    private static CheckOutcome WithRecorded(CheckOutcome outcome, string? recordedProblem) =>
        recordedProblem is null
            ? outcome
            : CheckOutcome.Fail("probe not run; recorded failure(s)", outcome.Threshold, recordedProblem + "; the live probe could not run: " + outcome.Detail);

    private string Sample(List<string> items)
    {
        var distinct = items.Distinct(StringComparer.Ordinal).ToList();
        return string.Join("; ", distinct.Take(_settings.SampleSize)) + (distinct.Count > _settings.SampleSize ? $"; and {distinct.Count - _settings.SampleSize} more" : "");
    }

    private async Task<bool> RoleExistsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, "select exists (select 1 from pg_roles where rolname = @role)", ("role", _settings.ApplicationRole));
        return (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task<List<string>> TenantsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var tenants = new List<string>();
        await using var command = Command(connection, "select id from tenants where id <> @system order by id", ("system", SystemTenant));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) tenants.Add(reader.GetString(0));
        return tenants;
    }

    /// <summary>A tenant table: its quoted name, the tenant column, and what the application role may do on it.</summary>
    private sealed record TenantTable(string Name, string Column, bool ColumnIsText, bool CanSelect, bool CanInsert)
    {
        public string Matches(string parameter) => ColumnIsText ? $"{Column} = @{parameter}" : $"{Column}::text = @{parameter}";
        public string DiffersFrom(string parameter) => ColumnIsText ? $"{Column} is distinct from @{parameter}" : $"{Column}::text is distinct from @{parameter}";
        public string AsText => ColumnIsText ? Column : $"{Column}::text";
    }

    private async Task<List<TenantTable>> TenantTablesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var tables = new List<TenantTable>();
        // Same discovery as rls_policies_active: a new table is probed because it is found, not listed. Views and
        // materialized views with a tenant_id column (any schema) are read through too: a view without
        // security_invoker checks the tables' policies as its owner, a materialized view has none.
        await using var command = Command(connection, """
            select distinct on (c.oid) c.oid::regclass::text, a.attname::text, a.atttypid = 'text'::regtype,
                   has_table_privilege(@role, c.oid, 'SELECT'), c.relkind in ('r', 'p') and has_table_privilege(@role, c.oid, 'INSERT')
            from pg_class c
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                               and (a.attname = 'tenant_id' or (c.relname = 'tenants' and c.relkind in ('r', 'p') and a.attname = 'id'))
            where (c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p'))
               or (c.relkind in ('v', 'm') and c.relnamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace))
            order by c.oid, a.attname = 'tenant_id' desc
            """, ("role", _settings.ApplicationRole));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            tables.Add(new TenantTable(reader.GetString(0), reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetBoolean(4)));
        tables.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return tables;
    }

    /// <summary>What the probe saw: rows of others visible, own rows invisible (blind), or a write for another tenant accepted.</summary>
    private abstract record Breach(string Table, string Viewer);
    private sealed record ReadLeak(string Table, string Viewer, string Rows) : Breach(Table, Viewer);
    private sealed record Blind(string Table, string Viewer) : Breach(Table, Viewer);
    private sealed record WriteAccepted(string Table, string Viewer, string Target) : Breach(Table, Viewer);

    /// <summary>One clause per table and kind, viewers deduplicated: the same leak seen from several pairs is said once.</summary>
    private string DescribeBreaches(List<Breach> breaches)
    {
        string List(IEnumerable<string> items)
        {
            var all = items.Distinct(StringComparer.Ordinal).ToList();
            return string.Join(", ", all.Take(_settings.SampleSize)) + (all.Count > _settings.SampleSize ? $", and {all.Count - _settings.SampleSize} more" : "");
        }

        var clauses = new List<string>();
        foreach (var table in breaches.GroupBy(b => b.Table).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var reads = table.OfType<ReadLeak>().GroupBy(r => r.Viewer).Select(g => g.First()).ToList();
            if (reads.Count > 0)
                clauses.Add($"{table.Key}: rows of other tenants visible — {List(reads.Select(r => $"as {r.Viewer}: {r.Rows}"))}");
            var writes = table.OfType<WriteAccepted>().ToList();
            if (writes.Count > 0)
                clauses.Add($"{table.Key}: a row for another tenant was accepted (rolled back) — {List(writes.Select(w => $"as {w.Viewer} for {w.Target}"))}");
            var blind = table.OfType<Blind>().ToList();
            if (blind.Count > 0)
                clauses.Add($"{table.Key}: the tenant's own rows are invisible as {List(blind.Select(b => b.Viewer))} — no policy admits the tenant (policy dropped?), so isolation on this table cannot be shown and the application cannot use it");
        }
        return string.Join("; ", clauses);
    }

    private sealed record PairProbe(List<Breach> Findings, List<string> Inconclusive, List<string> Notes, List<string> TablesWithForeignRows, List<string> WritesRefused);

    /// <summary>A row for the target, written while acting as the viewer: must be refused.</summary>
    private sealed record WriteProbe(string Table, string Sql);

    private static readonly WriteProbe[] WriteProbes =
    {
        new("security_events", "insert into security_events (tenant_id, kind, source, detail) values (@target, 'isolation_probe', 'clawkeeper-heartbeat', '{\"probe\": true}'::jsonb)"),
        new("tasks", "insert into tasks (id, tenant_id, orchestrator, kind) values (@probe_id, @target, 'clawkeeper-isolation-probe', 'isolation_probe')"),
    };

    private async Task<PairProbe> ProbePairAsync(NpgsqlConnection connection, TenantPair pair, List<TenantTable> tables, CancellationToken cancellationToken)
    {
        var result = new PairProbe(new(), new(), new(), new(), new());
        var (viewer, target) = (pair.Viewer, pair.Target);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // 1. As the monitoring role (sees everything): where do the viewer and the others have rows?
            var viewerHasRows = new Dictionary<string, bool>(StringComparer.Ordinal);
            foreach (var table in tables)
            {
                await using var facts = Command(connection,
                    $"select exists (select 1 from {table.Name} where {table.Matches("viewer")}), exists (select 1 from {table.Name} where {table.DiffersFrom("viewer")})",
                    ("viewer", viewer));
                facts.Transaction = transaction;
                await using var reader = await facts.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                viewerHasRows[table.Name] = reader.GetBoolean(0);
                if (reader.GetBoolean(1)) result.TablesWithForeignRows.Add(table.Name);
            }

            // 2. Become the application, acting for the viewer (both undone by the rollback).
            try
            {
                await Execute(connection, transaction, $"set local role {QuoteIdentifier(_settings.ApplicationRole)}", cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                result.Inconclusive.Add($"the monitoring role cannot SET ROLE {_settings.ApplicationRole} ({ex.MessageText}); grant it: GRANT {_settings.ApplicationRole} TO <monitoring role>");
                return result;
            }
            await using (var context = Command(connection, "select set_config('app.tenant_id', @viewer, true)", ("viewer", viewer)))
            {
                context.Transaction = transaction;
                await context.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }

            // 3. Reads: no other tenant's row may be visible; the viewer's own rows must be.
            foreach (var table in tables)
            {
                if (!table.CanSelect)
                {
                    result.Notes.Add($"{table.Name} is not readable by {_settings.ApplicationRole} (no SELECT grant): nothing to leak by reading");
                    continue;
                }
                await Savepoint(transaction, cancellationToken).ConfigureAwait(false);
                try
                {
                    var leaked = new List<(string Tenant, long Rows)>();
                    await using (var read = Command(connection, $"""
                        select coalesce(t, '(no tenant)'), count(*)::bigint
                        from (select {table.AsText} as t from {table.Name} where {table.DiffersFrom("viewer")} limit {LeakCountCap}) s
                        group by 1 order by 2 desc, 1
                        """, ("viewer", viewer)))
                    {
                        read.Transaction = transaction;
                        await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                            leaked.Add((reader.GetString(0), reader.GetInt64(1)));
                    }
                    bool seesOwn;
                    await using (var own = Command(connection, $"select exists (select 1 from {table.Name} where {table.Matches("viewer")})", ("viewer", viewer)))
                    {
                        own.Transaction = transaction;
                        seesOwn = (bool)(await own.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                    }
                    await ReleaseSavepoint(transaction, cancellationToken).ConfigureAwait(false);

                    if (leaked.Count > 0)
                    {
                        var total = leaked.Sum(l => l.Rows);
                        var rows = $"{(total >= LeakCountCap ? $"≥ {LeakCountCap}" : total.ToString())} row(s) " +
                                   $"({string.Join(", ", leaked.Take(_settings.SampleSize).Select(l => $"{l.Tenant} {l.Rows}"))}{(leaked.Count > _settings.SampleSize ? ", ..." : "")})";
                        result.Findings.Add(new ReadLeak(table.Name, viewer, rows));
                    }
                    if (viewerHasRows[table.Name] && !seesOwn)
                        result.Findings.Add(new Blind(table.Name, viewer));
                }
                catch (PostgresException ex)
                {
                    await RollbackToSavepoint(transaction, cancellationToken).ConfigureAwait(false);
                    result.Inconclusive.Add($"{table.Name}: reading as {viewer} failed: {ex.SqlState} {ex.MessageText}");
                }
            }

            // 4. Writes: a row for the target, written while acting as the viewer, must be refused.
            foreach (var probe in WriteProbes)
            {
                var table = tables.FirstOrDefault(t => t.Name == probe.Table);
                if (table is null) continue;
                if (!table.CanInsert)
                {
                    result.WritesRefused.Add(probe.Table);
                    result.Notes.Add($"{probe.Table}: {_settings.ApplicationRole} has no INSERT grant (writes refused by privilege)");
                    continue;
                }
                await Savepoint(transaction, cancellationToken).ConfigureAwait(false);
                try
                {
                    await using var write = Command(connection, probe.Sql, ("target", target), ("probe_id", $"isolation-probe-{Guid.NewGuid():N}"));
                    write.Transaction = transaction;
                    var rows = await write.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    await RollbackToSavepoint(transaction, cancellationToken).ConfigureAwait(false);
                    if (rows > 0)
                        result.Findings.Add(new WriteAccepted(probe.Table, viewer, target));
                    else
                        result.WritesRefused.Add(probe.Table);
                }
                catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege)
                {
                    // "new row violates row-level security policy" (or a missing grant): refused, as it must be.
                    await RollbackToSavepoint(transaction, cancellationToken).ConfigureAwait(false);
                    result.WritesRefused.Add(probe.Table);
                }
                catch (PostgresException ex)
                {
                    await RollbackToSavepoint(transaction, cancellationToken).ConfigureAwait(false);
                    result.Inconclusive.Add($"{probe.Table}: the write probe for {target} as {viewer} failed for another reason than isolation: {ex.SqlState} {ex.MessageText}");
                }
            }
            return result;
        }
        finally
        {
            // Nothing of the probe is kept: not the role, not the tenant context, not a row.
            try
            {
                await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
            {
                // The session broke (e.g. the check was cancelled mid-query): the server discards its open transaction.
            }
        }
    }

    private const string SavepointName = "clawkeeper_isolation_probe";

    private static Task Savepoint(NpgsqlTransaction transaction, CancellationToken cancellationToken) => transaction.SaveAsync(SavepointName, cancellationToken);
    private static Task ReleaseSavepoint(NpgsqlTransaction transaction, CancellationToken cancellationToken) => transaction.ReleaseAsync(SavepointName, cancellationToken);
    private static Task RollbackToSavepoint(NpgsqlTransaction transaction, CancellationToken cancellationToken) => transaction.RollbackAsync(SavepointName, cancellationToken);

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
