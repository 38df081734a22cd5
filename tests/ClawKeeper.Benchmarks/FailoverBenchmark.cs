using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ClawKeeper.Testing;

namespace ClawKeeper.Benchmarks;

/// <summary>How the singleton's node goes away.</summary>
public enum FailoverKind
{
    /// <summary>SIGKILL of the whole process: no leave, the others must detect and down it.</summary>
    HardKill,

    /// <summary>POST /cluster/leave on the ops surface: Cluster.Leave, singleton hand-over, then the node stops.</summary>
    Leave,

    /// <summary>SIGTERM: the generic host stops, coordinated shutdown leaves the cluster.</summary>
    Sigterm,
}

/// <summary>Options of <c>failover</c> mode.</summary>
public sealed record FailoverOptions
{
    public int Runs { get; init; } = 10;
    public int SigtermRuns { get; init; } = 3;
    public int BaselineRuns { get; init; } = 3;
    public int Nodes { get; init; } = 3;
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(150);

    /// <summary>Extra HOCON for the tuned profile (to try settings without rebuilding the Host).</summary>
    public string TunedOverrides { get; init; } = "";

    public string? ResultsPath { get; init; }
    public bool ResultsPathGiven { get; init; }
    public IReadOnlyList<string> Arguments { get; init; } = [];

    public const string Usage = """
        ClawKeeper singleton failover benchmark (issue 7)

        dotnet run -c Release --project tests/ClawKeeper.Benchmarks -- failover [options]

          --runs N            measurements per kind (hard kill, graceful leave), each on a fresh cluster (default 10)
          --sigterm-runs N    measurements of a SIGTERM shutdown (default 3; 0 = none)
          --baseline-runs N   hard kills with Akka's default failure detector and split-brain settings (default 3; 0 = none)
          --nodes N           cluster size (default 3)
          --timeout SECONDS   give up on one failover after this long (default 150)
          --akka HOCON        extra HOCON for the tuned profile, e.g. "akka.cluster.split-brain-resolver.stable-after = 5s"
          --results PATH      write the results as markdown (default tests/ClawKeeper.Benchmarks/RESULTS-failover.md)
          --no-results        do not write a results file

        Starts the built Host (src/ClawKeeper.Host/bin/<configuration>/net10.0/clawkeeper.dll) as real processes
        on 127.0.0.1 against a throwaway PostgreSQL (or CLAWKEEPER_TEST_PG).
        """;

    public static FailoverOptions Parse(IReadOnlyList<string> args)
    {
        var options = new FailoverOptions
        {
            Arguments = args.Where((a, i) => a != "--no-results" && a != "--results" && (i == 0 || args[i - 1] != "--results")).ToList(),
        };
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value");
            int Count(int min)
            {
                var text = Value();
                return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min
                    ? n
                    : throw new ArgumentException($"{arg}: expected a whole number >= {min}, got '{text}'");
            }

            options = arg switch
            {
                "--runs" => options with { Runs = Count(1) },
                "--sigterm-runs" => options with { SigtermRuns = Count(0) },
                "--baseline-runs" => options with { BaselineRuns = Count(0) },
                "--nodes" => options with { Nodes = Count(2) },
                "--timeout" => options with { Timeout = TimeSpan.FromSeconds(Count(10)) },
                "--akka" => options with { TunedOverrides = options.TunedOverrides + "\n" + Value() },
                "--results" => options with { ResultsPath = Value(), ResultsPathGiven = true },
                "--no-results" => options with { ResultsPath = null, ResultsPathGiven = true },
                "-h" or "--help" => throw new HelpRequestedException(),
                _ => throw new ArgumentException($"unknown option '{arg}'"),
            };
        }
        return options;
    }
}

/// <summary>One failover: from the moment the singleton's node was killed (or asked to leave) until ...</summary>
public sealed record FailoverMeasurement(string Profile, FailoverKind Kind, int Run, TimeSpan? Recovered, TimeSpan? FirstHeartbeat, TimeSpan? Unreachable, TimeSpan? Downed, string Note);

/// <summary>
/// Singleton failover time over real node processes: per measurement a fresh cluster of N nodes on a
/// fresh shared journal, the singleton's node killed (or asked to leave), and the time until a survivor's
/// supervisor has recovered its state from the journal ("failover done"), and until that survivor completed
/// its first heartbeat.
/// </summary>
public sealed class FailoverBenchmark
{
    public const string OpsToken = "failover-benchmark-ops-token";

    // Akka.NET 1.5's own defaults for everything hocon/akka.conf tunes (reference.conf of Akka.Cluster /
    // Akka.Cluster.Tools); down-removal-margin off = the split-brain resolver's stable-after.
    private const string AkkaDefaults = """
        akka.cluster.split-brain-resolver.stable-after = 20s
        akka.cluster.split-brain-resolver.down-all-when-unstable = on
        akka.cluster.down-removal-margin = off
        akka.cluster.failure-detector.heartbeat-interval = 1s
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 3s
        akka.cluster.failure-detector.threshold = 8.0
        akka.cluster.gossip-interval = 1s
        akka.cluster.leader-actions-interval = 1s
        akka.cluster.singleton.hand-over-retry-interval = 1s
        """;

    private readonly FailoverOptions _options;
    private readonly string _assembly;

    public FailoverBenchmark(FailoverOptions options, string assembly)
    {
        _options = options;
        _assembly = assembly;
    }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        Console.WriteLine($"ClawKeeper singleton failover benchmark — {started:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"host      {_assembly}");
        Console.WriteLine($"machine   {Environment.ProcessorCount} cores, {Load()}");
        Console.WriteLine($"cluster   {_options.Nodes} node processes on 127.0.0.1, journal and platform database on PostgreSQL ({(TestPostgres.UsesExternalServer ? "CLAWKEEPER_TEST_PG" : "throwaway server")})");
        Console.WriteLine();

        var measurements = new List<FailoverMeasurement>();
        var plan = new List<(string Profile, FailoverKind Kind, int Runs)>
        {
            ("tuned", FailoverKind.HardKill, _options.Runs),
            ("tuned", FailoverKind.Leave, _options.Runs),
            ("tuned", FailoverKind.Sigterm, _options.SigtermRuns),
            ("akka-defaults", FailoverKind.HardKill, _options.BaselineRuns),
        };
        foreach (var (profile, kind, runs) in plan)
            for (var run = 1; run <= runs; run++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var m = await MeasureAsync(profile, kind, run, cancellationToken);
                measurements.Add(m);
                Console.WriteLine($"{profile,-14} {Describe(kind),-15} run {run,2}: recovered {Seconds(m.Recovered)}, first heartbeat {Seconds(m.FirstHeartbeat)}"
                                  + (m.Unreachable is { } u ? $", unreachable {Seconds(u)}" : "") + (m.Downed is { } d ? $", downed {Seconds(d)}" : "")
                                  + (m.Note.Length > 0 ? $"  ({m.Note})" : ""));
            }

        var summary = Summarize(measurements);
        Console.WriteLine();
        Console.WriteLine(summary);
        var ended = DateTime.UtcNow;
        if (_options.ResultsPath is { } path)
        {
            await File.WriteAllTextAsync(path, Markdown(started, ended, measurements, summary), cancellationToken);
            Console.WriteLine($"results written to {path}");
        }
        var failed = measurements.Count(m => m.Recovered is null);
        return failed == 0 ? 0 : 1;
    }

    private static string Describe(FailoverKind kind) => kind switch
    {
        FailoverKind.HardKill => "hard kill",
        FailoverKind.Leave => "graceful leave",
        _ => "SIGTERM",
    };

    private async Task<FailoverMeasurement> MeasureAsync(string profile, FailoverKind kind, int run, CancellationToken cancellationToken)
    {
        var platformDb = await TestDatabases.CreateSeededAsync();
        var journalDb = await TestDatabases.CreateEmptyAsync();
        var config = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-failover-").FullName, "failover.conf");
        await File.WriteAllTextAsync(config, $"""
            clawkeeper.heartbeat {"{"} interval = 2s, initial-delay = 500ms, group-timeout = 1500ms, retry {"{"} interval = 500ms, max-attempts = 1 {"}"} {"}"}
            clawkeeper.fleet.claim-tasks = off
            {(profile == "tuned" ? _options.TunedOverrides : AkkaDefaults)}
            """, cancellationToken);
        await using var cluster = new ClawKeeperCluster(new ClusterNodeOptions
        {
            AssemblyPath = _assembly,
            PlatformDb = platformDb,
            JournalDb = journalDb,
            ConfigFile = config,
            OpsTokenSha256 = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(OpsToken))),
        });
        // Ctrl+C / SIGTERM: the nodes go at once, so every wait below ends and the cluster is disposed.
        await using var cancelled = cancellationToken.Register(() =>
        {
            foreach (var node in cluster.Nodes) node.Kill();
        });
        try
        {
            await cluster.StartAsync(_options.Nodes, _options.Timeout);
            var holder = cluster.SingletonHolder() ?? throw new BenchmarkFailedException("no node recovered the supervisor");
            // Steady state: the singleton ran a heartbeat and every node has seen every other up for a moment.
            if (await holder.WaitForLineAsync(l => ClawKeeperNodeProcess.SummaryLine().IsMatch(l), _options.Timeout, cancellationToken: cancellationToken) is null)
                throw new BenchmarkFailedException("the singleton completed no heartbeat\n" + cluster.Tails());
            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);

            var t0 = cluster.Clock.Elapsed;
            switch (kind)
            {
                case FailoverKind.HardKill:
                    holder.Kill();
                    break;
                case FailoverKind.Leave:
                    var status = await holder.LeaveAsync(OpsToken, cancellationToken);
                    if ((int)status != 202) throw new BenchmarkFailedException($"POST /cluster/leave answered {(int)status}");
                    break;
                default:
                    holder.Terminate();
                    break;
            }

            var moved = await cluster.WaitForRecoveryElsewhereAsync(holder, t0, _options.Timeout);
            if (moved is not { } found)
                return new FailoverMeasurement(profile, kind, run, null, null, null, null, $"no survivor recovered within {_options.Timeout.TotalSeconds:0} s; logs in {cluster.LogDirectory}");
            var heartbeat = await found.Node.WaitForLineAsync(l => ClawKeeperNodeProcess.SummaryLine().IsMatch(l), _options.Timeout, found.Line.Index, cancellationToken);
            var survivorLines = cluster.Running.SelectMany(n => n.Lines).Where(l => l.At >= t0).ToList();
            var unreachable = survivorLines.Where(l => l.Text.Contains("Marking node(s) as UNREACHABLE", StringComparison.Ordinal)).Select(l => (TimeSpan?)(l.At - t0)).Min();
            var downed = survivorLines.Where(l => l.Text.Contains("SBR is downing", StringComparison.Ordinal)).Select(l => (TimeSpan?)(l.At - t0)).Min();
            return new FailoverMeasurement(profile, kind, run, found.Line.At - t0, heartbeat is null ? null : heartbeat.At - t0, unreachable, downed,
                $"{holder.Name} -> {found.Node.Name}");
        }
        catch (TimeoutException e) when (!cancellationToken.IsCancellationRequested)
        {
            return new FailoverMeasurement(profile, kind, run, null, null, null, null, e.Message.Split('\n')[0]);
        }
    }

    private static string Seconds(TimeSpan? span) => span is { } s ? $"{s.TotalSeconds,6:0.00} s" : "     - ";

    private static TimeSpan? Median(IReadOnlyList<TimeSpan> values)
    {
        if (values.Count == 0) return null;
        var sorted = values.OrderBy(v => v).ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private string Summarize(IReadOnlyList<FailoverMeasurement> measurements)
    {
        var text = new StringBuilder();
        text.AppendLine("failover done = a survivor logged \"Heartbeat supervisor recovered\" (singleton started there, state recovered from the journal, timers running);");
        text.AppendLine("first heartbeat = that survivor's first completed heartbeat (initial-delay 500 ms + one round). Clock starts right before the kill / leave request.");
        text.AppendLine();
        text.AppendLine("profile         kind             runs  ok   median done   max done   median 1st hb   max 1st hb   goal     verdict");
        text.AppendLine("----------------------------------------------------------------------------------------------------------------------");
        foreach (var group in measurements.GroupBy(m => (m.Profile, m.Kind)))
        {
            var done = group.Where(m => m.Recovered is not null).Select(m => m.Recovered!.Value).ToList();
            var first = group.Where(m => m.FirstHeartbeat is not null).Select(m => m.FirstHeartbeat!.Value).ToList();
            var goal = group.Key.Kind == FailoverKind.HardKill ? TimeSpan.FromSeconds(10) : TimeSpan.FromSeconds(3);
            var max = done.Count == 0 ? (TimeSpan?)null : done.Max();
            var verdict = group.Key.Profile != "tuned" ? "(baseline)"
                : done.Count < group.Count() ? "FAILED RUNS"
                : max <= goal ? "met (max)"
                : Median(done) <= goal ? "met (median only)" : "NOT met";
            text.AppendLine($"{group.Key.Profile,-15} {Describe(group.Key.Kind),-15} {group.Count(),5} {done.Count,3}   {Seconds(Median(done)),11}   {Seconds(max),8}   {Seconds(Median(first)),13}   {Seconds(first.Count == 0 ? null : first.Max()),10}   <= {goal.TotalSeconds:0} s   {verdict}");
        }
        var tuned = Median(measurements.Where(m => m is { Profile: "tuned", Kind: FailoverKind.HardKill, Recovered: not null }).Select(m => m.Recovered!.Value).ToList());
        var baseline = Median(measurements.Where(m => m is { Profile: "akka-defaults", Kind: FailoverKind.HardKill, Recovered: not null }).Select(m => m.Recovered!.Value).ToList());
        if (tuned is { } t && baseline is { } b)
            text.AppendLine($"\nhard kill, Akka defaults / tuned (median): {b.TotalSeconds:0.00} s / {t.TotalSeconds:0.00} s = {b / t:0.0}x faster tuned");
        return text.ToString();
    }

    private string Markdown(DateTime started, DateTime ended, IReadOnlyList<FailoverMeasurement> measurements, string summary)
    {
        var md = new StringBuilder();
        md.AppendLine("# Singleton failover benchmark results (issue 7)");
        md.AppendLine();
        md.AppendLine("Written by `tests/ClawKeeper.Benchmarks` in `failover` mode. Reproduce with");
        md.AppendLine();
        md.AppendLine("```bash");
        md.AppendLine("dotnet run -c Release --project tests/ClawKeeper.Benchmarks -- failover " + string.Join(" ", _options.Arguments.Select(a => a.Contains(' ') ? $"\"{a}\"" : a)));
        md.AppendLine("```");
        md.AppendLine();
        md.AppendLine("```text");
        md.AppendLine($"run       {started:yyyy-MM-dd HH:mm} .. {ended:HH:mm} UTC; machine {Environment.ProcessorCount} cores, {Load()} at the end (shared with other engineers' builds)");
        md.AppendLine($"cluster   {_options.Nodes} real node processes on 127.0.0.1, a fresh cluster, journal and seeded platform database per measurement; heartbeat every 2 s");
        md.AppendLine($"tuned     hocon/akka.conf as built (journal warm-up at node start){(_options.TunedOverrides.Trim().Length > 0 ? " + " + _options.TunedOverrides.Trim().Replace('\n', ';') : "")}");
        md.AppendLine($"baseline  {AkkaDefaults.Replace('\n', ';').Replace("akka.cluster.", "")}");
        md.AppendLine();
        md.Append(summary);
        md.AppendLine();
        md.AppendLine("every measurement (seconds after the kill / leave request; unreachable = a survivor's failure detector marked it unreachable, downed = the split-brain resolver downed it):");
        foreach (var m in measurements)
            md.AppendLine($"{m.Profile,-14} {Describe(m.Kind),-15} run {m.Run,2}: done {Seconds(m.Recovered)}  first hb {Seconds(m.FirstHeartbeat)}  unreachable {Seconds(m.Unreachable)}  downed {Seconds(m.Downed)}  {m.Note}");
        md.AppendLine("```");
        return md.ToString();
    }

    private static string Load()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"load average {parts[0]} {parts[1]} {parts[2]}";
        }
        catch (IOException)
        {
            return "load average unknown";
        }
    }

    /// <summary>The Host built in the same configuration as this program (the project reference builds it).</summary>
    public static string HostAssembly(string projectDirectory)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = output.Parent!.Name;
        var root = Path.GetFullPath(Path.Combine(projectDirectory, "..", ".."));
        var path = Path.Combine(root, "src", "ClawKeeper.Host", "bin", configuration, output.Name, "clawkeeper.dll");
        return File.Exists(path) ? path : throw new BenchmarkFailedException($"the Host is not built: {path} (dotnet build -c {configuration} src/ClawKeeper.Host)");
    }
}
