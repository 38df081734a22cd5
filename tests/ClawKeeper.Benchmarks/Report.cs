using System.Globalization;
using System.Text;

namespace ClawKeeper.Benchmarks;

/// <summary>The printed table (plain text, monospace) and its markdown wrapper for RESULTS.md.</summary>
public sealed class Report
{
    private readonly List<(string Label, long Rows, double MedianMs, IReadOnlyList<double> Runs, string Note)> _rows = [];

    public void Add<T>(Measured<T> measured, string note) =>
        _rows.Add((measured.Label, measured.Rows, measured.MedianMs, measured.RunsMs, note));

    public string Render(
        BenchOptions options, MachineFacts machine, ServerFacts server, BenchServer bench, Seeder.SeedTimings seed, long seededEntries,
        DateTimeOffset started, IReadOnlyList<(string Text, bool? Met)> ratios, IReadOnlyList<string> notes, TimeSpan elapsed)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"ClawKeeper data-integrity benchmark — {started:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine(c, $"machine   {machine.Describe()} (at the end: load average {MachineFacts.Read().LoadAverage}; other engineers build and test on it too)");
        sb.AppendLine(c, $"server    PostgreSQL {server.Version}; {bench.Description}");
        sb.AppendLine(c, $"settings  {string.Join(", ", server.Settings.Select(s => s.Name + "=" + s.Value))}");
        sb.AppendLine(c, $"data      {options.Tenants:N0} tenants; audit_log {options.AuditRows:N0} rows (valid hash chains, {options.Layout.ToString().ToLowerInvariant()} layout); " +
                         $"journal {seededEntries:N0} entries / {options.JournalLines:N0} lines (balanced, all 5 account types)");
        sb.AppendLine(c, $"on disk   {string.Join("; ", server.Sizes.Select(s => s.Name + " " + s.Value))}");
        sb.AppendLine(c, $"seed      {seed.Total.TotalSeconds:N1} s = tenants+accounts {seed.Reference.TotalSeconds:N1} + audit COPY {seed.AuditCopy.TotalSeconds:N1} " +
                         $"+ audit indexes/heads {seed.AuditIndexes.TotalSeconds:N1} + journal COPY {seed.Journal.TotalSeconds:N1} + journal indexes {seed.JournalIndexes.TotalSeconds:N1} " +
                         $"+ ledger_balances {seed.Balances.TotalSeconds:N1} + verification {seed.Verify.TotalSeconds:N1} + VACUUM ANALYZE {seed.Vacuum.TotalSeconds:N1} " +
                         $"(maintenance_work_mem={options.MaintenanceWorkMem} for the index builds)");
        sb.AppendLine(c, $"cache     warm: each step ran up to {options.Repeat}x back to back (once more only while its runs took < {options.RepeatBudget.TotalSeconds:N0} s) " +
                         $"right after the data was written and vacuumed; shared_buffers and the OS page cache ({machine.MemoryGb} GB RAM) hold all tables; " +
                         $"the median is reported, every run is listed");
        sb.AppendLine();

        var labelWidth = Math.Max(44, _rows.Max(r => r.Label.Length));
        var header = $"{"step".PadRight(labelWidth)}  {"rows",12}  {"median ms",11}  {"us/row",8}  {"runs ms",-28}  result";
        sb.AppendLine(header);
        sb.AppendLine(new string('-', header.Length + 20));
        foreach (var row in _rows)
        {
            var runs = string.Join(" / ", row.Runs.Select(r => r.ToString("N0", c)));
            var perRow = row.Rows > 0 ? (row.MedianMs * 1000 / row.Rows).ToString(row.MedianMs * 1000 / row.Rows < 10 ? "N2" : "N0", c) : "";
            sb.AppendLine(c, $"{row.Label.PadRight(labelWidth)}  {row.Rows,12:N0}  {row.MedianMs,11:N1}  {perRow,8}  {runs,-28}  {row.Note}");
        }

        sb.AppendLine();
        sb.AppendLine("ratios (medians; (a) = both checks' full verification, (b) = both incremental, (c) = both naive queries, reference = both count(*))");
        foreach (var (text, met) in ratios)
        {
            var verdict = met switch { true => "  -> GOAL MET", false => "  -> GOAL NOT MET", null => "" };
            sb.Append("  ").Append(text).AppendLine(verdict);
        }
        if (notes.Count > 0)
        {
            sb.AppendLine();
            foreach (var note in notes) sb.AppendLine(c, $"note: {note}");
        }

        sb.AppendLine();
        sb.AppendLine(c, $"total benchmark time {elapsed.TotalMinutes:N1} min");
        return sb.ToString();
    }

    public static string Markdown(string table, IReadOnlyList<string> plans, BenchOptions options)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Data-integrity benchmark results (issue 3)");
        sb.AppendLine();
        sb.AppendLine("Written by `tests/ClawKeeper.Benchmarks` (a console program, not a test). Reproduce with");
        sb.AppendLine();
        sb.AppendLine("```bash");
        var arguments = string.Join(' ', options.Arguments);
        sb.AppendLine(("dotnet run -c Release --project tests/ClawKeeper.Benchmarks -- " + arguments).TrimEnd());
        sb.AppendLine("```");
        sb.AppendLine();
        sb.AppendLine("```text");
        sb.Append(table);
        sb.AppendLine("```");
        if (plans.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("## Query plans");
            sb.AppendLine();
            sb.AppendLine("One extra run of each check with `auto_explain` (`log_analyze`, `log_buffers`, `log_timing`; the instrumentation");
            sb.AppendLine("makes these runs slower than the timed ones), copied from the server log.");
            sb.AppendLine();
            foreach (var plan in plans)
            {
                sb.AppendLine(plan);
                sb.AppendLine();
            }
        }

        return sb.ToString();
    }
}
