using System.Diagnostics;
using System.Globalization;
using System.Text;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Platform.Schema;
using Npgsql;

namespace ClawKeeper.Benchmarks;

/// <summary>The benchmark could not measure what it claims (a check failed where it must pass, a seed is broken, ...).</summary>
public sealed class BenchmarkFailedException(string message) : Exception(message);

/// <summary>
/// Issue 3's benchmark of the heartbeat's data-integrity verification at scale: seeds a platform
/// database in bulk, then times (a) the full verification of audit_log_continuous and
/// financial_totals_balance, (b) their steady-state incremental run after new rows, (c) a naive
/// whole-table baseline, against PostgreSQL merely reading the rows, all in the same run; checks
/// that a tampered entry deep in a chain is caught by (a) and, through change detection, by (b).
/// </summary>
public sealed class IntegrityBenchmark(BenchOptions options)
{
    private readonly DataIntegritySettings _settings = new(
        Timeout: options.CheckTimeout, FullVerificationEvery: TimeSpan.FromHours(24), SampleSize: 5,
        ApplicationRole: "clawkeeper_app", BlockWrites: true);

    private readonly SeedPlan _plan = new(options);
    private readonly Report _report = new();
    private readonly List<string> _notes = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private void Log(string message) => Console.WriteLine($"[{_clock.Elapsed:hh\\:mm\\:ss}] {message}");

    private const string HashFunctions = """
        audit_hash_field(text);
        audit_entry_canonical(text, bigint, timestamptz, text, text, text, text, jsonb, text);
        audit_entry_hash(text, bigint, timestamptz, text, text, text, text, jsonb, text)
        """;

    public async Task<int> RunAsync(CancellationToken ct)
    {
        var started = DateTimeOffset.UtcNow;
        var machine = MachineFacts.Read();
        Log($"machine: {machine.Describe()}");
        Log($"sizes: {options.Tenants:N0} tenants, {options.AuditRows:N0} audit rows, {options.JournalLines:N0} journal lines, " +
            $"{options.NewRows:N0} new rows; layout {options.Layout.ToString().ToLowerInvariant()}; up to {options.Repeat} runs per step");

        await using var server = await BenchServer.StartAsync(options, Log, ct);
        Log($"server: {server.Description}");
        var connectionString = server.ConnectionString;
        await PlatformMigrator.MigrateAsync(connectionString, ct);
        Log("migrated (PlatformMigrator)");

        // ---- seed -------------------------------------------------------------------------------
        Log("seeding ...");
        var seeder = new Seeder(connectionString, _plan, options, Log);
        var seed = await seeder.SeedAsync(ct);
        Log($"seeded in {seed.Total.TotalSeconds:N1} s");
        if (options.SeedOnly) return 0;

        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var admin = await dataSource.OpenConnectionAsync(ct);
        var serverFacts = await ServerFacts.ReadAsync(admin, ct);
        Log($"postgres: {serverFacts.Version}; {string.Join(", ", serverFacts.Settings.Select(s => s.Name + "=" + s.Value))}");
        Log($"sizes on disk: {string.Join(", ", serverFacts.Sizes.Select(s => s.Name + " " + s.Value))}");
        var inlinedFromStart = await HashInlinedAsync(admin, ct);
        Log($"audit_entry_hash inlined by the planner: {inlinedFromStart}");
        _notes.Add(inlinedFromStart
            ? "The migrated schema already lets the planner inline audit_entry_hash (the hash functions are STABLE): no what-if step."
            : "The migrated schema's audit hash functions are IMMUTABLE over STABLE calls, so audit_entry_hash is NOT inlined (one SQL-function call chain per entry).");

        var audit = new AuditLogContinuousCheck(dataSource, _settings);
        var ledger = new FinancialTotalsBalanceCheck(dataSource, _settings);
        var newLines = Math.Max(2, (long)Math.Round((double)options.NewRows * _plan.JournalLines / _plan.AuditRows));
        var explainSteps = new List<(string Label, double MedianMs, Func<NpgsqlDataSource, Task<string>> Run)>();

        // ---- reference: PostgreSQL reading the rows once ----------------------------------------
        Log("reference: count(*) reading every heap row (index-only scans off) ...");
        var refAudit = await TimeAsync("reference count(*) audit_log", _plan.AuditRows,
            c => CountHeapAsync(dataSource, "audit_log", parallel: true, c), n => Expect(n == _plan.AuditRows, $"count(*) = {n}"), ct);
        var refAuditSerial = await TimeAsync("  same, one process (no parallel workers)", _plan.AuditRows,
            c => CountHeapAsync(dataSource, "audit_log", parallel: false, c), n => Expect(n == _plan.AuditRows, $"count(*) = {n}"), ct);
        var refLines = await TimeAsync("reference count(*) journal_lines", _plan.JournalLines,
            c => CountHeapAsync(dataSource, "journal_lines", parallel: true, c), n => Expect(n == _plan.JournalLines, $"count(*) = {n}"), ct);
        var refLinesSerial = await TimeAsync("  same, one process (no parallel workers)", _plan.JournalLines,
            c => CountHeapAsync(dataSource, "journal_lines", parallel: false, c), n => Expect(n == _plan.JournalLines, $"count(*) = {n}"), ct);
        _report.Add(refAudit, $"plan: {await PlanShapeAsync(admin, "audit_log", ct)}");
        _report.Add(refAuditSerial, "");
        _report.Add(refLines, $"plan: {await PlanShapeAsync(admin, "journal_lines", ct)}");
        _report.Add(refLinesSerial, "");

        // ---- floor: PostgreSQL recomputing one plain SHA-256 per audit row (issue 12) --------------
        Log("floor: a plain SQL sha256 over the concatenated fields of every audit row ...");
        var floorAudit = await TimeAsync("floor: SQL sha256 per audit row", _plan.AuditRows,
            c => Sha256FloorAsync(dataSource, c), n => Expect(n == _plan.AuditRows, $"sha256 floor counted {n}"), ct);
        _report.Add(floorAudit, "select count(*) where sha256(convert_to(fields concatenated, 'UTF8')) is not null (parallel seq scan; no canonical encoding)");

        // ---- (a) full verification ----------------------------------------------------------------
        var fullContext = new CheckContext("bench", DateTimeOffset.UtcNow, null, null, FullVerification: true);
        Log($"(a) full verification: audit_log_continuous (timeout {options.CheckTimeout.TotalMinutes:N0} min) ...");
        var fullAudit = await TimeAsync("(a) audit_log_continuous, full", _plan.AuditRows,
            c => CheckRunner.RunOneAsync(audit, fullContext, c), r => ExpectPassOrTimeout(r, $"{_plan.AuditRows} entries verified (full verification)"), ct);
        var fullAuditPassed = fullAudit.Last.Status == CheckStatus.Pass;
        Log("(a) full verification: financial_totals_balance ...");
        var fullLedger = await TimeAsync("(a) financial_totals_balance, full", _plan.JournalLines,
            c => CheckRunner.RunOneAsync(ledger, fullContext, c), r => ExpectPass(r, "(full recount)"), ct);
        _report.Add(fullAudit, Observed(fullAudit.Last));
        _report.Add(fullLedger, Observed(fullLedger.Last));
        explainSteps.Add(("(a) audit_log_continuous, full", fullAudit.MedianMs, async ds => Observed(await CheckRunner.RunOneAsync(new AuditLogContinuousCheck(ds, _settings), fullContext, ct))));
        explainSteps.Add(("(a) financial_totals_balance, full", fullLedger.MedianMs, async ds => Observed(await CheckRunner.RunOneAsync(new FinancialTotalsBalanceCheck(ds, _settings), fullContext, ct))));

        IntegrityWatermarks watermarks;
        if (fullAuditPassed)
        {
            watermarks = IntegrityWatermarks.None.Advance(
                [fullAudit.Last.Progress!, fullLedger.Last.Progress!], fullVerification: true, DateTimeOffset.UtcNow);
        }
        else
        {
            // The full verification did not finish: take the positions it would have recorded (the
            // chain heads, verified against the last entries when seeding) so that (b) can still run.
            watermarks = IntegrityWatermarks.None.Advance(
                [await HeadsProgressAsync(admin, ct), fullLedger.Last.Progress!], fullVerification: true, DateTimeOffset.UtcNow);
            _notes.Add($"(a) audit_log_continuous did not finish within its timeout ({options.CheckTimeout.TotalMinutes:N0} min): " +
                       "(b) starts from watermarks built from the verified chain heads instead of from (a)'s progress.");
        }

        // ---- new rows through the normal path -----------------------------------------------------
        Log($"appending {options.NewRows:N0} audit rows (trigger) and {newLines:N0} journal lines (ledger triggers) as clawkeeper_app, one transaction per tenant ...");
        var insertWatch = Stopwatch.StartNew();
        await AppendNewRowsAsync(dataSource, newLines, ct);
        var insertMs = insertWatch.Elapsed.TotalMilliseconds;
        _report.Add(new Measured<long>("append new rows (normal path)", options.NewRows + newLines, [insertMs], 0),
            $"{options.NewRows:N0} audit rows + {newLines:N0} journal lines in {_plan.Tenants} transactions as clawkeeper_app " +
            $"({insertMs * 1000 / (options.NewRows + newLines):N0} us per row)");

        // ---- (b) incremental ----------------------------------------------------------------------
        var incrementalContext = new CheckContext("bench", DateTimeOffset.UtcNow, null, watermarks, FullVerification: false);
        Log("(b) incremental: audit_log_continuous ...");
        var incAudit = await TimeAsync("(b) audit_log_continuous, incremental", options.NewRows,
            c => CheckRunner.RunOneAsync(audit, incrementalContext, c), r => ExpectPass(r, $"{options.NewRows} entries verified (incremental)"), ct);
        Log("(b) incremental: financial_totals_balance ...");
        var incLedger = await TimeAsync("(b) financial_totals_balance, incremental", newLines,
            c => CheckRunner.RunOneAsync(ledger, incrementalContext, c),
            r => ExpectPass(r, "(running totals + recount + entries written since the last verified round ("), ct);
        _report.Add(incAudit, Observed(incAudit.Last));
        _report.Add(incLedger, Observed(incLedger.Last));
        explainSteps.Add(("(b) audit_log_continuous, incremental", incAudit.MedianMs, async ds => Observed(await CheckRunner.RunOneAsync(new AuditLogContinuousCheck(ds, _settings), incrementalContext, ct))));
        explainSteps.Add(("(b) financial_totals_balance, incremental", incLedger.MedianMs, async ds => Observed(await CheckRunner.RunOneAsync(new FinancialTotalsBalanceCheck(ds, _settings), incrementalContext, ct))));

        // ---- (d) the round after 10,000 changed rows scattered over old data (issue 12) -----------
        Log($"(d) changing {options.NewRows:N0} old journal lines scattered over the table (balanced, through the ledger triggers) ...");
        var changed = await ChangeOldLinesAsync(admin, options.NewRows, ct);
        Log($"    changed {changed:N0} lines");
        var changeContext = new CheckContext("bench", DateTimeOffset.UtcNow, null, watermarks.Advance(
            [incAudit.Last.Progress!, incLedger.Last.Progress!], fullVerification: false, DateTimeOffset.UtcNow), FullVerification: false);
        var changeAudit = await TimeAsync("(d) audit_log_continuous, round after changes", 0,
            c => CheckRunner.RunOneAsync(audit, changeContext, c), r => ExpectPass(r, "(incremental)"), ct);
        var changeLedger = await TimeAsync($"(d) financial_totals_balance, round after changes", changed,
            c => CheckRunner.RunOneAsync(ledger, changeContext, c), r => ExpectPass(r, "running totals"), ct);
        _report.Add(changeAudit, Observed(changeAudit.Last));
        _report.Add(changeLedger, Observed(changeLedger.Last) + $" ({changed:N0} old lines changed before it)");
        _changeRound = changeAudit.MedianMs + changeLedger.MedianMs;
        // The goal's reference: count(*) of the tables change detection reads, in the state the round read them (the
        // changed lines' pages are no longer all-visible; the round's first run set the new tuples' hint bits).
        Log("(d) reference: count(*) of audit_log, journal_lines, journal_entries, ledger_accounts, ledger_balances after the changes ...");
        var changeReference = await TimeAsync("(d) reference count(*) of the five tables, after the changes", 0,
            c => CountHeapAsync(dataSource, ChangeDetectedTables, parallel: true, c), n => Expect(n >= _plan.AuditRows + _plan.JournalLines, $"count(*) = {n}"), ct);
        _report.Add(changeReference, $"{string.Join(" + ", ChangeDetectedTables)}, each a parallel heap scan, summed");
        _changeReference = changeReference.MedianMs;

        // ---- (c) naive baseline -------------------------------------------------------------------
        var totalAudit = _plan.AuditRows + options.NewRows;
        var totalLines = _plan.JournalLines + newLines;
        Log("(c) naive baseline: window-function gap scan over audit_log ...");
        var naiveAudit = await TimeAsync("(c) naive lag() gap scan, audit_log", totalAudit,
            c => NaiveGapScanAsync(dataSource, c), r => Expect(r.Rows == totalAudit && r.Anomalies == 0, $"{r.Rows} rows, {r.Anomalies} anomalies"), ct);
        Log("(c) naive baseline: SUM GROUP BY tenant over journal_lines ...");
        var naiveLedger = await TimeAsync("(c) naive SUM ... GROUP BY tenant_id, lines", totalLines,
            c => NaiveSumsAsync(dataSource, c), r => Expect(r.Tenants == _plan.Tenants && r.Unbalanced == 0, $"{r.Tenants} tenants, {r.Unbalanced} unbalanced"), ct);
        _report.Add(naiveAudit, $"{naiveAudit.Last.Anomalies} anomalies (links and gaps only, no hash recomputation); plan: {await NaivePlanShapeAsync(admin, ct)}");
        _report.Add(naiveLedger, $"{naiveLedger.Last.Tenants} tenants balanced");
        explainSteps.Add(("(c) naive lag() gap scan", naiveAudit.MedianMs, async ds => (await NaiveGapScanAsync(ds, ct)).ToString()));
        explainSteps.Add(("(c) naive SUM GROUP BY", naiveLedger.MedianMs, async ds => (await NaiveSumsAsync(ds, ct)).ToString()));

        // ---- query plans (one extra, instrumented run each) ---------------------------------------
        var plans = new List<string>();
        if (options.Explain)
            plans.AddRange(await CapturePlansAsync(server, connectionString, explainSteps, ct));

        // ---- tamper: full verification must find it, incremental too (changed since the verified round) --
        var tamperTenant = _plan.Tenants / 2;
        var tenantId = _plan.TenantIds[tamperTenant];
        var tamperSeq = Math.Max(1, _plan.ChainLength(tamperTenant) / 2);
        var runShippedTamper = fullAuditPassed && fullAudit.MedianMs <= options.TamperMax.TotalMilliseconds;
        await TamperRoundAsync(admin, audit, incrementalContext, tenantId, tamperSeq, runFull: runShippedTamper, prefix: "", ct);
        if (!runShippedTamper)
            _notes.Add($"The tamper run of the shipped (a) was skipped: (a) {(fullAuditPassed ? $"took {fullAudit.MedianMs / 60000:N1} min (> --tamper-max)" : "did not finish")}." +
                       (options.WhatIf ? " The what-if below runs the same check code on the tampered chain." : ""));

        // ---- what-if: the audit hash functions made inlinable -------------------------------------
        Measured<CheckResult>? whatIfFull = null, whatIfInc = null;
        if (options.WhatIf && !inlinedFromStart)
        {
            Log("what-if: ALTER FUNCTION ... STABLE on the three audit hash functions (same results; the planner can inline them) ...");
            await Seeder.ExecAsync(admin, string.Join('\n', HashFunctions.Split(';').Select(f => $"ALTER FUNCTION {f.Trim()} STABLE;")), ct);
            NpgsqlConnection.ClearAllPools(); // new sessions, no plan cached with the old volatility
            var inlined = await HashInlinedAsync(admin, ct);
            Log($"audit_entry_hash inlined by the planner now: {inlined}");
            Expect(inlined, "audit_entry_hash is inlined after ALTER FUNCTION ... STABLE");
            whatIfFull = await TimeAsync("what-if (a) audit_log_continuous, full", totalAudit,
                c => CheckRunner.RunOneAsync(audit, fullContext, c), r => ExpectPass(r, $"{totalAudit} entries verified (full verification)"), ct);
            whatIfInc = await TimeAsync("what-if (b) audit_log_continuous, incremental", options.NewRows,
                c => CheckRunner.RunOneAsync(audit, incrementalContext, c), r => ExpectPass(r, $"{options.NewRows} entries verified (incremental)"), ct);
            _report.Add(whatIfFull, Observed(whatIfFull.Last) + $" ({totalAudit:N0} rows: includes the appended ones)");
            _report.Add(whatIfInc, Observed(whatIfInc.Last));
            if (options.Explain)
            {
                plans.AddRange(await CapturePlansAsync(server, connectionString,
                [
                    ("what-if (a) audit_log_continuous, full", whatIfFull.MedianMs,
                        async ds => Observed(await CheckRunner.RunOneAsync(new AuditLogContinuousCheck(ds, _settings), fullContext, ct))),
                    ("what-if (b) audit_log_continuous, incremental", whatIfInc.MedianMs,
                        async ds => Observed(await CheckRunner.RunOneAsync(new AuditLogContinuousCheck(ds, _settings), incrementalContext, ct))),
                ], ct));
            }

            await TamperRoundAsync(admin, audit, incrementalContext, tenantId, tamperSeq, runFull: true, prefix: "what-if ", ct);
        }

        // ---- report -------------------------------------------------------------------------------
        var ratios = Ratios(refAudit, refAuditSerial, refLines, refLinesSerial, fullAudit, fullLedger, incAudit, incLedger, naiveAudit, naiveLedger, whatIfFull, whatIfInc, floorAudit);
        var text = _report.Render(options, machine, serverFacts, server, seed, seeder.SeededEntries, started, ratios, _notes, _clock.Elapsed);
        Console.WriteLine();
        Console.WriteLine(text);
        if (plans.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("Query plans (auto_explain):");
            foreach (var plan in plans) Console.WriteLine(plan);
        }

        if (options.ResultsPath is { } path)
        {
            await File.WriteAllTextAsync(path, Report.Markdown(text, plans, options), CancellationToken.None);
            Log($"results written to {Path.GetFullPath(path)}");
        }

        return 0;
    }

    private List<(string Text, bool? Met)> Ratios(
        Measured<long> refAudit, Measured<long> refAuditSerial, Measured<long> refLines, Measured<long> refLinesSerial,
        Measured<CheckResult> fullAudit, Measured<CheckResult> fullLedger, Measured<CheckResult> incAudit, Measured<CheckResult> incLedger,
        Measured<(long Anomalies, long Rows)> naiveAudit, Measured<(int Tenants, int Unbalanced)> naiveLedger,
        Measured<CheckResult>? whatIfFull, Measured<CheckResult>? whatIfInc, Measured<long> floorAudit)
    {
        var timedOut = fullAudit.Last.Status != CheckStatus.Pass;
        var lowerBound = timedOut ? "> " : "";
        var a = fullAudit.MedianMs + fullLedger.MedianMs;
        var reference = refAudit.MedianMs + refLines.MedianMs;
        var referenceSerial = refAuditSerial.MedianMs + refLinesSerial.MedianMs;
        var b = incAudit.MedianMs + incLedger.MedianMs;
        var c = naiveAudit.MedianMs + naiveLedger.MedianMs;
        var ratios = new List<(string Text, bool? Met)>
        {
            ($"(b)/(c) incremental vs naive        = {b:N1} / {c:N1} ms = {b / c * 100:N2} %   (goal <= 2 %)", b / c <= 0.02),
            ($"(a)/reference full vs count(*)      = {lowerBound}{a:N1} / {reference:N1} ms = {lowerBound}{a / reference:N1}x   (issue 12 goal <= 10x)" +
             (timedOut ? $"  [(a) audit did not finish: timed out after {fullAudit.MedianMs / 60000:N1} min]" : ""), a / reference <= 10),
            ($"    same against one-process count(*) = {lowerBound}{a / referenceSerial:N1}x", null),
            ($"    audit (a) vs the SQL sha256 floor = {lowerBound}{fullAudit.MedianMs:N1} / {floorAudit.MedianMs:N1} ms = {lowerBound}{fullAudit.MedianMs / floorAudit.MedianMs:N2}x", null),
            ($"(d)/reference round after {options.NewRows:N0} changed old rows vs count(*) of the five tables then = {_changeRound:N1} / {_changeReference:N1} ms = {_changeRound / _changeReference:N2}x   (issue 12 goal <= 2x)",
             _changeRound / _changeReference <= 2),
            ($"    same against the run's first count(*) of audit_log + journal_lines = {_changeRound:N1} / {reference:N1} ms = {_changeRound / reference:N2}x", null),
            ($"    audit only: (a) {lowerBound}{fullAudit.MedianMs:N1} ms / count(*) {refAudit.MedianMs:N1} ms = {lowerBound}{fullAudit.MedianMs / refAudit.MedianMs:N1}x; " +
             $"ledger only: (a) {fullLedger.MedianMs:N1} ms / count(*) {refLines.MedianMs:N1} ms = {fullLedger.MedianMs / refLines.MedianMs:N1}x", null),
            ($"    audit only: (b) {incAudit.MedianMs:N1} ms / (c) {naiveAudit.MedianMs:N1} ms = {incAudit.MedianMs / naiveAudit.MedianMs * 100:N2} %; " +
             $"ledger only: (b) {incLedger.MedianMs:N1} ms / (c) {naiveLedger.MedianMs:N1} ms = {incLedger.MedianMs / naiveLedger.MedianMs * 100:N2} %", null),
        };
        if (whatIfFull is not null && whatIfInc is not null)
        {
            var a2 = whatIfFull.MedianMs + fullLedger.MedianMs;
            var b2 = whatIfInc.MedianMs + incLedger.MedianMs;
            ratios.Add(("what-if (audit hash functions STABLE, so inlined; check code unchanged):", null));
            ratios.Add(($"    (b)/(c) = {b2:N1} / {c:N1} ms = {b2 / c * 100:N2} %   (goal <= 2 %)", b2 / c <= 0.02));
            ratios.Add(($"    (a)/reference = {a2:N1} / {reference:N1} ms = {a2 / reference:N1}x   (goal <= 2x; against one-process count(*): {a2 / referenceSerial:N1}x)", a2 / reference <= 2));
            ratios.Add(($"    audit (a) shipped / what-if = {lowerBound}{fullAudit.MedianMs / whatIfFull.MedianMs:N1}x faster; audit (b) shipped / what-if = {incAudit.MedianMs / whatIfInc.MedianMs:N1}x faster", null));
        }

        return ratios;
    }

    private double _changeRound;
    private double _changeReference;

    /// <summary>
    /// Changes <paramref name="rows"/> old journal lines spread evenly over the whole table, in pairs that keep
    /// their entry balanced (one debit line +1 cent, one credit line +1 cent), with the ledger triggers on,
    /// as the platform's owner. Returns the number of lines changed.
    /// </summary>
    private static async Task<long> ChangeOldLinesAsync(NpgsqlConnection admin, long rows, CancellationToken ct)
    {
        var entries = Math.Max(1, rows / 2);
        await using var command = new NpgsqlCommand("""
            with numbered as (select id, row_number() over (order by id) as n, count(*) over () as total from journal_entries),
            picked as (select id from numbered where n % greatest(1, total / @entries) = 0 limit @entries),
            debit as (select distinct on (l.entry_id) l.id from journal_lines l join picked p on p.id = l.entry_id where l.debit_cents > 0 order by l.entry_id, l.id),
            credit as (select distinct on (l.entry_id) l.id from journal_lines l join picked p on p.id = l.entry_id where l.credit_cents > 0 order by l.entry_id, l.id)
            update journal_lines
            set debit_cents = debit_cents + case when debit_cents > 0 then 1 else 0 end,
                credit_cents = credit_cents + case when credit_cents > 0 then 1 else 0 end
            where id in (select id from debit union all select id from credit)
            """, admin) { CommandTimeout = 0 };
        command.Parameters.AddWithValue("entries", entries);
        return await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<long> Sha256FloorAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            select count(*) from audit_log
            where sha256(convert_to(tenant_id || seq::text || occurred_at::text || actor || action || coalesce(entity_type, '')
                                    || coalesce(entity_id, '') || payload::text || prev_hash, 'UTF8')) is not null
            """);
        command.CommandTimeout = 0;
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    private async Task TamperRoundAsync(
        NpgsqlConnection admin, AuditLogContinuousCheck audit, CheckContext incrementalContext, string tenantId, long tamperSeq, bool runFull, string prefix, CancellationToken ct)
    {
        Log($"{prefix}tamper: rewriting the payload of {tenantId} seq {tamperSeq} (of {_plan.ChainLength(_plan.Tenants / 2)}) behind the triggers ...");
        var original = await TamperAsync(admin, tenantId, tamperSeq, ct);
        try
        {
            if (runFull)
            {
                var tamperFull = await TimeAsync($"{prefix}tamper: (a) full finds {tenantId} seq {tamperSeq}", _plan.AuditRows + options.NewRows,
                    c => CheckRunner.RunOneAsync(audit, new CheckContext("bench", DateTimeOffset.UtcNow, null, null, FullVerification: true), c),
                    r => Expect(r.Status == CheckStatus.Fail && r.Detail.Contains($"tenant {tenantId}: seq {tamperSeq} modified", StringComparison.Ordinal),
                        $"expected fail naming tenant {tenantId}: seq {tamperSeq}; got {r.Status}: {r.Observed} / {r.Detail}"), ct, repeat: 1);
                _report.Add(tamperFull, $"{tamperFull.Last.Status.ToWire()}: \"{tamperFull.Last.Observed}\" {tamperFull.Last.Detail}");
            }

            // Change detection (docs/integrity.md): the rewritten tuple has a new xmin, so (b) re-verifies its chain from there.
            var tamperInc = await TimeAsync($"{prefix}tamper: (b) incremental, behind watermark", options.NewRows,
                c => CheckRunner.RunOneAsync(audit, incrementalContext, c),
                r => Expect(r.Status == CheckStatus.Fail && r.Detail.Contains($"tenant {tenantId}: seq {tamperSeq} modified", StringComparison.Ordinal),
                    $"expected (b) to fail naming tenant {tenantId}: seq {tamperSeq} (changed since the verified round); got {r.Status}: {r.Observed} / {r.Detail}"), ct, repeat: 1);
            _report.Add(tamperInc, $"{tamperInc.Last.Status.ToWire()}: the entry behind the verified watermark changed since the verified round and was re-verified");
        }
        finally
        {
            await RestoreAsync(admin, tenantId, tamperSeq, original, CancellationToken.None);
        }

        Log("restored the tampered entry (its hash recomputes again)");
    }

    private static async Task<bool> HashInlinedAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("""
            EXPLAIN (VERBOSE) SELECT audit_entry_hash(tenant_id, seq, occurred_at, actor, action, entity_type, entity_id, payload, prev_hash) FROM audit_log LIMIT 1
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var inlined = true;
        while (await reader.ReadAsync(ct))
            if (reader.GetString(0).Contains("audit_entry_hash(", StringComparison.Ordinal)) inlined = false;
        return inlined;
    }

    private static async Task<AuditProgress> HeadsProgressAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var positions = System.Collections.Immutable.ImmutableDictionary.CreateBuilder<string, AuditPosition>();
        await using var command = new NpgsqlCommand("SELECT tenant_id, last_seq, last_hash FROM audit_chain_heads WHERE last_seq > 0", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            positions[reader.GetString(0)] = new AuditPosition(reader.GetInt64(1), reader.GetString(2));
        return new AuditProgress(positions.ToImmutable());
    }

    // ---------------------------------------------------------------------------------------------

    private async Task<Measured<T>> TimeAsync<T>(string label, long rows, Func<CancellationToken, Task<T>> step, Action<T> validate, CancellationToken ct, int? repeat = null)
    {
        var runs = new List<double>();
        T last = default!;
        var runsWanted = repeat ?? options.Repeat;
        for (var i = 0; i < runsWanted; i++)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            last = await step(ct);
            var ms = sw.Elapsed.TotalMilliseconds;
            ct.ThrowIfCancellationRequested();
            validate(last);
            runs.Add(ms);
            Log($"    {label}: run {i + 1}: {ms:N1} ms");
            if (last is CheckResult { Status: not CheckStatus.Pass and not CheckStatus.Fail }) break; // timed out: once is enough
            if (i + 1 < runsWanted && runs.Sum() >= options.RepeatBudget.TotalMilliseconds)
            {
                Log($"    {label}: not repeated (runs so far took longer than --repeat-budget {options.RepeatBudget.TotalSeconds:N0} s)");
                break;
            }
        }

        return new Measured<T>(label, rows, runs, last);
    }

    private static void Expect(bool condition, string what)
    {
        if (!condition) throw new BenchmarkFailedException("unexpected result: " + what);
    }

    private static void ExpectPass(CheckResult result, string observedContains)
    {
        if (result.Status != CheckStatus.Pass)
            throw new BenchmarkFailedException($"{result.Check} must pass but is {result.Status.ToWire()}: {result.Observed} / {result.Detail}");
        if (!result.Observed.Contains(observedContains, StringComparison.Ordinal))
            throw new BenchmarkFailedException($"{result.Check}: expected '{observedContains}' in the observed text, got '{result.Observed}'");
        if (result.Progress is null)
            throw new BenchmarkFailedException($"{result.Check} passed without progress (watermark)");
    }

    /// <summary>Pass, or an error because the check did not finish within its timeout (reported, not hidden).</summary>
    private static void ExpectPassOrTimeout(CheckResult result, string observedContains)
    {
        if (result.Status == CheckStatus.Error && result.Detail.Contains("did not finish within its timeout", StringComparison.Ordinal)) return;
        ExpectPass(result, observedContains);
    }

    private static string Observed(CheckResult result) => $"{result.Status.ToWire()}: \"{result.Observed}\"";

    /// <summary>The tables the change-detection round examines (issue 12: "at most 2x a count(*) of those tables").</summary>
    private static readonly string[] ChangeDetectedTables = ["audit_log", "journal_lines", "journal_entries", "ledger_accounts", "ledger_balances"];

    private static Task<long> CountHeapAsync(NpgsqlDataSource dataSource, string table, bool parallel, CancellationToken ct) =>
        CountHeapAsync(dataSource, [table], parallel, ct);

    /// <summary>count(*) of each table in turn (one statement each), summed.</summary>
    private static async Task<long> CountHeapAsync(NpgsqlDataSource dataSource, IReadOnlyList<string> tables, bool parallel, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await Seeder.ExecAsync(connection, HeapScanSettings(parallel), ct);
        var count = 0L;
        foreach (var table in tables)
            count += await Seeder.ScalarAsync<long>(connection, $"SELECT count(*) FROM {table}", ct);
        await transaction.CommitAsync(ct);
        return count;
    }

    private static string HeapScanSettings(bool parallel) =>
        "SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;"
        + (parallel ? "" : " SET LOCAL max_parallel_workers_per_gather = 0;");

    private static async Task<string> PlanShapeAsync(NpgsqlConnection connection, string table, CancellationToken ct)
    {
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await Seeder.ExecAsync(connection, HeapScanSettings(parallel: true), ct);
        var shape = await PlanNodesAsync(connection, $"EXPLAIN SELECT count(*) FROM {table}", ct);
        await transaction.CommitAsync(ct);
        return shape;
    }

    private static async Task<string> PlanNodesAsync(NpgsqlConnection connection, string explain, CancellationToken ct)
    {
        var nodes = new List<string>();
        await using var command = new NpgsqlCommand(explain, connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var line = reader.GetString(0).Trim();
            if (line.StartsWith("->", StringComparison.Ordinal)) line = line[2..].Trim();
            var cut = line.IndexOf("  (cost=", StringComparison.Ordinal);
            if (cut > 0) nodes.Add(line[..cut]);
            else if (line.StartsWith("Workers Planned", StringComparison.Ordinal)) nodes.Add(line);
        }

        return string.Join(" > ", nodes);
    }

    private const string NaiveGapScan = """
        SELECT count(*) FILTER (WHERE (prev_seq IS NULL AND (seq <> 1 OR prev_hash <> repeat('0', 64)))
                                   OR (prev_seq IS NOT NULL AND (seq <> prev_seq + 1 OR prev_hash <> prev_row_hash))),
               count(*)
        FROM (SELECT seq, prev_hash, lag(seq) OVER w AS prev_seq, lag(hash) OVER w AS prev_row_hash
              FROM audit_log
              WINDOW w AS (PARTITION BY tenant_id ORDER BY seq)) x
        """;

    private const string NaiveSums = "SELECT tenant_id, sum(debit_cents), sum(credit_cents) FROM journal_lines GROUP BY tenant_id";

    private static async Task<string> NaivePlanShapeAsync(NpgsqlConnection connection, CancellationToken ct) =>
        await PlanNodesAsync(connection, "EXPLAIN " + NaiveGapScan, ct);

    private static async Task<(long Anomalies, long Rows)> NaiveGapScanAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(NaiveGapScan);
        command.CommandTimeout = 0;
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static async Task<(int Tenants, int Unbalanced)> NaiveSumsAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(NaiveSums);
        command.CommandTimeout = 0;
        await using var reader = await command.ExecuteReaderAsync(ct);
        var (tenants, unbalanced) = (0, 0);
        while (await reader.ReadAsync(ct))
        {
            tenants++;
            if (reader.GetDecimal(1) != reader.GetDecimal(2)) unbalanced++;
        }

        return (tenants, unbalanced);
    }

    /// <summary>What the application does: per tenant, one transaction as clawkeeper_app with
    /// app.tenant_id set, appending audit entries (the chain trigger assigns seq and hashes) and
    /// balanced journal entries (the statement triggers move ledger_balances).</summary>
    private async Task AppendNewRowsAsync(NpgsqlDataSource dataSource, long newLines, CancellationToken ct)
    {
        var entriesByTenant = _plan.Entries(newLines, "je-new-", 0, DateTime.UtcNow.AddHours(-1))
            .GroupBy(e => e.Tenant).ToDictionary(g => g.Key, g => g.ToList());
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        var auditTotal = 0L;
        for (var t = 0; t < _plan.Tenants; t++)
        {
            var tenantId = _plan.TenantIds[t];
            var auditRows = options.NewRows / _plan.Tenants + (t < options.NewRows % _plan.Tenants ? 1 : 0);
            entriesByTenant.TryGetValue(t, out var entries);
            if (auditRows == 0 && entries is null) continue;

            await using var transaction = await connection.BeginTransactionAsync(ct);
            await using (var command = new NpgsqlCommand("SET LOCAL ROLE clawkeeper_app; SELECT set_config('app.tenant_id', @t, true)", connection))
            {
                command.Parameters.AddWithValue("t", tenantId);
                await command.ExecuteNonQueryAsync(ct);
            }

            if (auditRows > 0)
            {
                await using var command = new NpgsqlCommand("""
                    INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, payload)
                    SELECT @t, 'agent:cfo', 'invoice.created', 'invoice', 'inv-new-' || g, jsonb_build_object('n', g)
                    FROM generate_series(1, @n) AS g
                    """, connection);
                command.Parameters.AddWithValue("t", tenantId);
                command.Parameters.AddWithValue("n", auditRows);
                auditTotal += await command.ExecuteNonQueryAsync(ct);
            }

            if (entries is not null)
            {
                await using (var command = new NpgsqlCommand(
                                 "INSERT INTO journal_entries (id, tenant_id, description) SELECT id, @t, 'benchmark append' FROM unnest(@ids::text[]) AS e(id)", connection))
                {
                    command.Parameters.AddWithValue("t", tenantId);
                    command.Parameters.AddWithValue("ids", entries.Select(e => e.Id).ToArray());
                    await command.ExecuteNonQueryAsync(ct);
                }

                var lines = entries.SelectMany(e => e.Lines.Select(l => (e.Id, Line: l))).ToList();
                await using (var command = new NpgsqlCommand("""
                                 INSERT INTO journal_lines (tenant_id, entry_id, account_id, debit_cents, credit_cents)
                                 SELECT @t, e, a, d, c FROM unnest(@e::text[], @a::text[], @d::bigint[], @c::bigint[]) AS x(e, a, d, c)
                                 """, connection))
                {
                    command.Parameters.AddWithValue("t", tenantId);
                    command.Parameters.AddWithValue("e", lines.Select(l => l.Id).ToArray());
                    command.Parameters.AddWithValue("a", lines.Select(l => l.Line.AccountId).ToArray());
                    command.Parameters.AddWithValue("d", lines.Select(l => l.Line.DebitCents).ToArray());
                    command.Parameters.AddWithValue("c", lines.Select(l => l.Line.CreditCents).ToArray());
                    await command.ExecuteNonQueryAsync(ct);
                }
            }

            await transaction.CommitAsync(ct);
        }

        Expect(auditTotal == options.NewRows, $"{auditTotal} audit rows appended");
        var kept = await Seeder.ScalarAsync<long>(connection, "SELECT sum(line_count)::bigint FROM ledger_balances", ct);
        Expect(kept == _plan.JournalLines + newLines, $"the ledger triggers count {kept} lines");
    }

    private static async Task<string> TamperAsync(NpgsqlConnection connection, string tenantId, long seq, CancellationToken ct)
    {
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await Seeder.ExecAsync(connection, "SET LOCAL session_replication_role = replica", ct);
        await using var command = new NpgsqlCommand("""
            WITH old AS (SELECT payload::text AS payload FROM audit_log WHERE tenant_id = @t AND seq = @s)
            UPDATE audit_log SET payload = '{"n": -1, "tampered": true}'
            WHERE tenant_id = @t AND seq = @s
            RETURNING (SELECT payload FROM old)
            """, connection);
        command.Parameters.AddWithValue("t", tenantId);
        command.Parameters.AddWithValue("s", seq);
        var original = (string?)await command.ExecuteScalarAsync(ct) ?? throw new BenchmarkFailedException($"no entry {tenantId} seq {seq} to tamper with");
        await transaction.CommitAsync(ct);
        return original;
    }

    private static async Task RestoreAsync(NpgsqlConnection connection, string tenantId, long seq, string original, CancellationToken ct)
    {
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await Seeder.ExecAsync(connection, "SET LOCAL session_replication_role = replica", ct);
        await using (var command = new NpgsqlCommand("UPDATE audit_log SET payload = @p::jsonb WHERE tenant_id = @t AND seq = @s", connection))
        {
            command.Parameters.AddWithValue("p", original);
            command.Parameters.AddWithValue("t", tenantId);
            command.Parameters.AddWithValue("s", seq);
            await command.ExecuteNonQueryAsync(ct);
        }

        await transaction.CommitAsync(ct);
        await using var check = new NpgsqlCommand("""
            SELECT audit_entry_hash(tenant_id, seq, occurred_at, actor, action, entity_type, entity_id, payload, prev_hash) = hash
            FROM audit_log WHERE tenant_id = @t AND seq = @s
            """, connection);
        check.Parameters.AddWithValue("t", tenantId);
        check.Parameters.AddWithValue("s", seq);
        Expect((bool)(await check.ExecuteScalarAsync(ct))!, "the restored entry's hash recomputes");
    }

    /// <summary>One more run of each step on connections that load auto_explain with ANALYZE and
    /// BUFFERS; the plans are read back from the server log (only when the server is ours). Steps
    /// whose timed median exceeds --explain-max are skipped (the instrumentation would add as much again).</summary>
    private async Task<List<string>> CapturePlansAsync(
        BenchServer server, string connectionString, List<(string Label, double MedianMs, Func<NpgsqlDataSource, Task<string>> Run)> steps, CancellationToken ct)
    {
        var plans = new List<string>();
        if (server.ServerLogPath is not { } logPath)
        {
            plans.Add("(plans not captured: the server log of an external server is not readable here)");
            return plans;
        }

        Log("capturing query plans with auto_explain (EXPLAIN ANALYZE, BUFFERS: one extra instrumented run per step) ...");
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            Options = "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 -c auto_explain.log_analyze=on " +
                      "-c auto_explain.log_buffers=on -c auto_explain.log_timing=on -c auto_explain.log_triggers=off",
            ApplicationName = "clawkeeper-bench-explain",
        };
        await using var explained = NpgsqlDataSource.Create(builder.ConnectionString);
        foreach (var (label, medianMs, run) in steps)
        {
            if (medianMs > options.ExplainMax.TotalMilliseconds)
            {
                Log($"    {label}: no instrumented run (its median {medianMs / 1000:N0} s exceeds --explain-max {options.ExplainMax.TotalSeconds:N0} s)");
                plans.Add($"### {label}\n\n(no instrumented run: its timed median of {medianMs / 1000:N0} s exceeds --explain-max {options.ExplainMax.TotalSeconds:N0} s)");
                continue;
            }

            var offset = new FileInfo(logPath).Length;
            var sw = Stopwatch.StartNew();
            var outcome = await run(explained);
            Log($"    {label} (instrumented): {sw.Elapsed.TotalMilliseconds:N1} ms, {outcome}");
            await Task.Delay(300, ct); // the log is the server's stderr: let it land
            var blocks = ReadPlanBlocks(logPath, offset)
                .Where(b => !b.Contains("pg_roles", StringComparison.Ordinal) && !b.Contains("SELECT version();", StringComparison.Ordinal))
                .ToList();
            plans.Add($"### {label} — instrumented run {sw.Elapsed.TotalMilliseconds:N0} ms\n\n```\n{string.Join("\n\n", blocks)}\n```");
        }

        return plans;
    }

    private static IEnumerable<string> ReadPlanBlocks(string logPath, long offset)
    {
        using var stream = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        StringBuilder? block = null;
        while (reader.ReadLine() is { } line)
        {
            var marker = line.IndexOf("LOG:  duration: ", StringComparison.Ordinal);
            if (marker >= 0 && line.Contains("plan:", StringComparison.Ordinal))
            {
                if (block is not null) yield return block.ToString();
                block = new StringBuilder(line[(marker + 6)..]);
            }
            else if (block is not null && line.StartsWith('\t'))
            {
                block.Append('\n').Append(line[1..]);
            }
            else if (block is not null)
            {
                yield return block.ToString();
                block = null;
            }
        }

        if (block is not null) yield return block.ToString();
    }
}

/// <summary>One timed step: every run in milliseconds and the last result.</summary>
public sealed record Measured<T>(string Label, long Rows, IReadOnlyList<double> RunsMs, T Last)
{
    public double MedianMs
    {
        get
        {
            var sorted = RunsMs.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
    }
}

public sealed record MachineFacts(int Cores, string Cpu, long MemoryGb, string LoadAverage)
{
    public static MachineFacts Read()
    {
        string ReadOr(string path, string fallback)
        {
            try
            {
                return File.ReadAllText(path);
            }
            catch (IOException)
            {
                return fallback;
            }
            catch (UnauthorizedAccessException)
            {
                return fallback;
            }
        }

        var cpu = ReadOr("/proc/cpuinfo", "").Split('\n').FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        var memLine = ReadOr("/proc/meminfo", "").Split('\n').FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        var memKb = memLine is null ? 0 : long.Parse(memLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        var load = string.Join(' ', ReadOr("/proc/loadavg", "? ? ?").Split(' ').Take(3));
        return new MachineFacts(Environment.ProcessorCount, cpu, (long)Math.Round(memKb / 1024.0 / 1024.0), load);
    }

    public string Describe() => $"{Cores} cores ({Cpu}), {MemoryGb} GB RAM, load average {LoadAverage}";
}

public sealed record ServerFacts(string Version, List<(string Name, string Value)> Settings, List<(string Name, string Value)> Sizes)
{
    public static async Task<ServerFacts> ReadAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var version = await Seeder.ScalarAsync<string>(connection, "SHOW server_version", ct);
        var settings = new List<(string, string)>();
        foreach (var name in new[] { "shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "max_parallel_workers_per_gather", "jit", "random_page_cost", "wal_level", "fsync" })
            settings.Add((name, await Seeder.ScalarAsync<string>(connection, $"SHOW {name}", ct)));
        var sizes = new List<(string, string)>();
        foreach (var table in new[] { "audit_log", "journal_lines", "journal_entries" })
            sizes.Add((table, await Seeder.ScalarAsync<string>(connection,
                $"SELECT pg_size_pretty(pg_table_size('{table}')) || ' heap + ' || pg_size_pretty(pg_indexes_size('{table}')) || ' indexes'", ct)));
        return new ServerFacts(version, settings, sizes);
    }
}
