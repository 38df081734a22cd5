using System.Globalization;

namespace ClawKeeper.Benchmarks;

/// <summary>Physical order of the seeded audit rows in the heap.</summary>
public enum AuditLayout
{
    /// <summary>Rows in time order, tenants interleaved (what concurrent writers produce): realistic.</summary>
    Interleaved,

    /// <summary>Each tenant's chain stored contiguously (as after CLUSTER on the primary key): best case.</summary>
    Clustered,
}

/// <summary>Command-line options. Defaults are the full-size run of issue 3.</summary>
public sealed record BenchOptions
{
    public int Tenants { get; init; } = 1000;
    public long AuditRows { get; init; } = 10_000_000;
    public long JournalLines { get; init; } = 2_000_000;
    public int NewRows { get; init; } = 10_000;
    public int Repeat { get; init; } = 3;
    public AuditLayout Layout { get; init; } = AuditLayout.Interleaved;
    public bool Small { get; init; }

    /// <summary>Restart the throwaway server with this shared_buffers (null: keep LocalPostgresServer's 64MB).</summary>
    public string? SharedBuffers { get; init; } = "4GB";

    /// <summary>work_mem for the benchmark database (ALTER DATABASE ... SET), null = server default (4MB).</summary>
    public string? WorkMem { get; init; } = "64MB";

    public string MaintenanceWorkMem { get; init; } = "1GB";
    public bool Explain { get; init; } = true;

    /// <summary>The checks' timeout (DataIntegritySettings.Timeout); the heartbeat's default is 1 h.</summary>
    public TimeSpan CheckTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>A step is repeated (up to <see cref="Repeat"/> runs) only while its runs so far took less than this.</summary>
    public TimeSpan RepeatBudget { get; init; } = TimeSpan.FromMinutes(4);

    /// <summary>Skip the instrumented (EXPLAIN ANALYZE) run of a step whose timed median is longer than this.</summary>
    public TimeSpan ExplainMax { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Skip the tamper run of the shipped full verification when its timed median is longer than this.</summary>
    public TimeSpan TamperMax { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>After the measurements, make the audit hash functions inlinable (STABLE) in the throwaway
    /// database and time the audit check again: evidence for the suggested schema fix.</summary>
    public bool WhatIf { get; init; } = true;

    /// <summary>With CLAWKEEPER_TEST_PG: leave the benchmark database in place (for investigating plans by hand).</summary>
    public bool KeepDatabase { get; init; }

    /// <summary>Stop after seeding (to tune the bulk load).</summary>
    public bool SeedOnly { get; init; }

    /// <summary>Where to write the results (markdown); null = do not write.</summary>
    public string? ResultsPath { get; init; }

    public bool ResultsPathGiven { get; init; }

    /// <summary>The command line without --results/--no-results (for "reproduce with").</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];

    public const string Usage = """
        ClawKeeper data-integrity benchmark (issue 3)

        dotnet run -c Release --project tests/ClawKeeper.Benchmarks -- [options]

          --tenants N            tenants (default 1000)
          --audit-rows N         seeded audit_log rows, valid hash chains (default 10000000)
          --journal-lines N      seeded journal lines, balanced entries (default 2000000)
          --new-rows N           audit rows appended through the trigger before the incremental run (default 10000);
                                 journal lines are appended in proportion (new-rows * journal-lines / audit-rows)
          --small                quick smoke run, ~1/100 of the size: 100 tenants, 100000 audit rows,
                                 20000 journal lines, 100 new rows (options given after it still apply)
          --repeat N             timed repetitions per step, the median is reported (default 3)
          --layout L             interleaved (default: rows in time order, tenants mixed, as concurrent writers
                                 leave them) or clustered (each tenant's chain contiguous: best case)
          --shared-buffers SIZE  restart the throwaway server with this shared_buffers (default 4GB, so that the 10M-row audit_log and its indexes fit;
                                 'keep' = LocalPostgresServer's 64MB). Ignored with CLAWKEEPER_TEST_PG.
          --work-mem SIZE        work_mem of the benchmark database (default 64MB; 'default' = server default)
          --no-explain           skip the extra auto_explain (EXPLAIN ANALYZE, BUFFERS) run of each check
          --explain-max SECONDS  no instrumented run for a step whose median took longer (default 120)
          --check-timeout SECONDS  the checks' timeout, DataIntegritySettings.Timeout (default 3600, the heartbeat's)
          --repeat-budget SECONDS  stop repeating a step once its runs took this long (default 240)
          --tamper-max SECONDS   skip the tamper run of the shipped full verification when its median took longer (default 600)
          --no-what-if           skip the what-if: audit hash functions made inlinable (ALTER FUNCTION ... STABLE
                                 in the throwaway database), audit check timed again
          --seed-only            stop after seeding and verifying the data (to tune the bulk load)
          --keep-database        with CLAWKEEPER_TEST_PG only: do not drop the benchmark database at the end
          --results PATH         write the results as markdown to PATH (default: tests/ClawKeeper.Benchmarks/RESULTS.md
                                 for a full-size run, nothing for --small)
          --no-results           do not write a results file

        CLAWKEEPER_TEST_PG (a superuser connection string): use that server instead of a throwaway one
        (a database is created and dropped; server settings are left alone).
        """;

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var kept = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] == "--results") i++;
            else if (args[i] != "--no-results") kept.Add(args[i]);
        }

        var options = new BenchOptions { Arguments = kept };
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value()
            {
                if (i + 1 >= args.Count) throw new ArgumentException($"{arg} needs a value");
                return args[++i];
            }

            options = arg switch
            {
                "--tenants" => options with { Tenants = checked((int)ParseCount(arg, Value(), min: 1)) },
                "--audit-rows" => options with { AuditRows = ParseCount(arg, Value(), min: 1) },
                "--journal-lines" => options with { JournalLines = ParseCount(arg, Value(), min: 2) },
                "--new-rows" => options with { NewRows = checked((int)ParseCount(arg, Value(), min: 1)) },
                "--repeat" => options with { Repeat = checked((int)ParseCount(arg, Value(), min: 1)) },
                "--small" => options with { Small = true, Tenants = 100, AuditRows = 100_000, JournalLines = 20_000, NewRows = 100 },
                "--layout" => options with
                {
                    Layout = Value() switch
                    {
                        "interleaved" => AuditLayout.Interleaved,
                        "clustered" => AuditLayout.Clustered,
                        var other => throw new ArgumentException($"--layout: expected interleaved or clustered, got '{other}'"),
                    },
                },
                "--shared-buffers" => options with { SharedBuffers = Value() is var sb && sb == "keep" ? null : ParseSize(arg, sb) },
                "--work-mem" => options with { WorkMem = Value() is var wm && wm == "default" ? null : ParseSize(arg, wm) },
                "--no-explain" => options with { Explain = false },
                "--explain-max" => options with { ExplainMax = TimeSpan.FromSeconds(ParseCount(arg, Value(), min: 0)) },
                "--check-timeout" => options with { CheckTimeout = TimeSpan.FromSeconds(ParseCount(arg, Value(), min: 1)) },
                "--repeat-budget" => options with { RepeatBudget = TimeSpan.FromSeconds(ParseCount(arg, Value(), min: 0)) },
                "--tamper-max" => options with { TamperMax = TimeSpan.FromSeconds(ParseCount(arg, Value(), min: 0)) },
                "--no-what-if" => options with { WhatIf = false },
                "--seed-only" => options with { SeedOnly = true },
                "--keep-database" => options with { KeepDatabase = true },
                "--explain" => options with { Explain = true },
                "--results" => options with { ResultsPath = Value(), ResultsPathGiven = true },
                "--no-results" => options with { ResultsPath = null, ResultsPathGiven = true },
                "-h" or "--help" => throw new HelpRequestedException(),
                _ => throw new ArgumentException($"unknown option '{arg}'"),
            };
        }

        if (options.KeepDatabase && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(ClawKeeper.Testing.TestPostgres.ServerVariable)))
            throw new ArgumentException("--keep-database needs CLAWKEEPER_TEST_PG (the throwaway server is always removed)");
        if (options.Tenants > options.AuditRows)
            throw new ArgumentException("--audit-rows must be at least --tenants (every tenant gets a chain)");
        return options;
    }

    private static long ParseCount(string option, string text, long min)
    {
        var cleaned = text.Replace("_", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);
        long multiplier = 1;
        if (cleaned.EndsWith('k') || cleaned.EndsWith('K')) (multiplier, cleaned) = (1_000, cleaned[..^1]);
        else if (cleaned.EndsWith('m') || cleaned.EndsWith('M')) (multiplier, cleaned) = (1_000_000, cleaned[..^1]);
        if (!long.TryParse(cleaned, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value * multiplier < min)
            throw new ArgumentException($"{option}: expected a whole number >= {min} (e.g. 10000000, 10_000_000 or 10M), got '{text}'");
        return value * multiplier;
    }

    private static string ParseSize(string option, string text)
    {
        if (!System.Text.RegularExpressions.Regex.IsMatch(text, "^[0-9]+(kB|MB|GB)$"))
            throw new ArgumentException($"{option}: expected a PostgreSQL size such as 512MB or 2GB, got '{text}'");
        return text;
    }
}

public sealed class HelpRequestedException : Exception;
