using System.Globalization;
using System.Text;
using ClawKeeper.Testing;

namespace ClawKeeper.Benchmarks;

/// <summary>Options of <c>escalation</c> mode.</summary>
public sealed record EscalationOptions
{
    /// <summary>The persistent failure: an API key that expired (<c>api-key</c>) or a task stuck for two hours (<c>stuck-task</c>).</summary>
    public string Failure { get; init; } = "api-key";

    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(8);

    public string? ResultsPath { get; init; }
    public bool ResultsPathGiven { get; init; }
    public IReadOnlyList<string> Arguments { get; init; } = [];

    public const string Usage = """
        ClawKeeper escalation latency (issue 11): a persistent failure to super_admin's e-mail and Discord message

        dotnet run -c Release --project tests/ClawKeeper.Benchmarks -- escalation [options]

          --failure F         api-key (default: an active API key expired) or stuck-task (a task running for 2 h)
          --timeout SECONDS   give up after this long (default 480)
          --results PATH      write the results as markdown (default tests/ClawKeeper.Benchmarks/RESULTS-escalation.md)
          --no-results        do not write a results file

        Starts one real `clawkeeper run` node (the built Host) with the DEFAULT heartbeat settings (interval 4 h,
        initial delay 15 s, retry every 1 min, hard at 3 attempts, escalate after 3 failed heartbeats) against a
        seeded throwaway PostgreSQL (or CLAWKEEPER_TEST_PG; the Akka journal on the same server), an SMTP server
        and a Discord webhook stand-in on loopback. The failure is in place before the node starts, so the first
        heartbeat sees it. Prints when each heartbeat, the e-mail and the Discord message arrived.
        """;

    public static EscalationOptions Parse(IReadOnlyList<string> args)
    {
        var options = new EscalationOptions
        {
            Arguments = args.Where((a, i) => a != "--no-results" && a != "--results" && (i == 0 || args[i - 1] != "--results")).ToList(),
        };
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => ++i < args.Count ? args[i] : throw new ArgumentException($"{arg} needs a value");
            options = arg switch
            {
                "--failure" => Value() is var failure && failure is "api-key" or "stuck-task"
                    ? options with { Failure = failure }
                    : throw new ArgumentException("--failure must be api-key or stuck-task"),
                "--timeout" => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
                    ? options with { Timeout = TimeSpan.FromSeconds(seconds) }
                    : throw new ArgumentException("--timeout must be a positive whole number of seconds"),
                "--results" => options with { ResultsPath = Value(), ResultsPathGiven = true },
                "--no-results" => options with { ResultsPath = null, ResultsPathGiven = true },
                "-h" or "--help" => throw new HelpRequestedException(),
                _ => throw new ArgumentException($"unknown option '{arg}'"),
            };
        }
        return options;
    }
}

/// <summary>
/// Time from a persistent failure to super_admin's e-mail and Discord message on a real node with the default retry
/// settings (the protocol: three consecutive failed heartbeats; goal ≤ 3 minutes). Measures, does not assert.
/// </summary>
public sealed class EscalationBenchmark(EscalationOptions options, string hostAssembly)
{
    private const string SuperAdmin = "owner@clawkeeper.test";
    private static readonly TimeSpan Goal = TimeSpan.FromMinutes(3);

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        Console.WriteLine($"escalation latency: failure {options.Failure}, default heartbeat settings; preparing PostgreSQL ...");
        var platformDb = await TestDatabases.CreateSeededAsync();
        var journalDb = await TestDatabases.CreateEmptyAsync();
        await Sql.ExecuteAsync(platformDb, options.Failure == "api-key"
            ? "update api_keys set expires_at = now() - interval '1 minute' where id = 'key-t-acme-bakery-primary'"
            : """
              insert into tasks (id, tenant_id, orchestrator, status, created_at, assigned_at, started_at, attempts)
              values ('task-stuck-2h', 't-summit-hvac', 'support-lead', 'running', now() - interval '3 hours', now() - interval '2 hours', now() - interval '2 hours', 1)
              """);

        await using var providers = await LoopbackHttpServer.StartAsync();
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        var discordEpoch = DateTimeOffset.UtcNow;
        await using var discord = await DiscordWebhookStandIn.StartAsync(System.Diagnostics.Stopwatch.StartNew());
        var directory = Directory.CreateTempSubdirectory("clawkeeper-escalation-").FullName;
        var config = Path.Combine(directory, "escalation.conf");
        // Heartbeat and retry settings stay at their defaults. Only the two checks that time this machine's answers get
        // room (a loaded machine must not add a second failing check to the one measured), and the fleet claims no task.
        await File.WriteAllTextAsync(config, ProviderStandIns.Hocon(providers.BaseAddress) + $$"""

            clawkeeper {
              fleet.claim-tasks = off
              checks.system-health.api-server { max-response-time = 10s, timeout = 15s }
              checks.security-posture.rate-limiter.burst-timeout = 20s
              alerts {
                smtp { host = "127.0.0.1", port = {{smtp.Port}}, tls = none }
                audiences.super_admin { email = ["{{SuperAdmin}}"], discord-webhook = "{{discord.Webhook}}" }
              }
            }
            """, cancellationToken);

        await using var cluster = new ClawKeeperCluster(new ClusterNodeOptions
        {
            AssemblyPath = hostAssembly,
            PlatformDb = platformDb,
            JournalDb = journalDb,
            ConfigFile = config,
            Seeds = 1,
        });
        await using var cancelled = cancellationToken.Register(() =>
        {
            foreach (var node in cluster.Nodes) node.Kill();
        });
        var wallStart = DateTimeOffset.UtcNow - cluster.Clock.Elapsed; // cluster.Clock zero, in wall time
        Console.WriteLine("starting the node ...");
        await cluster.StartAsync(1, TimeSpan.FromMinutes(2));
        var node = cluster.Nodes[0];
        var started = node.Lines.FirstOrDefault(l => l.Text.Contains(ClawKeeperNodeProcess.RecoveredMarker, StringComparison.Ordinal))?.At ?? TimeSpan.Zero;

        TimeSpan? email = null, post = null;
        var deadline = cluster.Clock.Elapsed + options.Timeout;
        var printed = 0;
        while ((email is null || post is null) && cluster.Clock.Elapsed < deadline && !node.HasExited)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var heartbeats = node.Heartbeats;
            for (; printed < heartbeats.Count; printed++)
            {
                var (line, id, status, failures) = heartbeats[printed];
                Console.WriteLine($"  {line.At.TotalSeconds,7:0.0} s  {id} {status}, consecutive failures {failures}");
            }
            if (email is null && smtp.Received.Any(m => m.EnvelopeTo.Contains(SuperAdmin) && (m.Message.Subject ?? "").Contains("consecutive", StringComparison.Ordinal)))
            {
                email = cluster.Clock.Elapsed;
                Console.WriteLine($"  {email.Value.TotalSeconds,7:0.0} s  e-mail to super_admin received");
            }
            if (post is null && discord.Messages.FirstOrDefault(p => p.Body.Contains("consecutive", StringComparison.Ordinal)) is { } first)
            {
                post = discordEpoch + first.At - wallStart;
                Console.WriteLine($"  {post.Value.TotalSeconds,7:0.0} s  Discord message received");
            }
            await Task.Delay(100, cancellationToken);
        }

        var all = node.Heartbeats;
        var firstFailure = all.FirstOrDefault(h => h.Status == "fail");
        var escalated = all.FirstOrDefault(h => h.ConsecutiveFailures >= 3);
        // A heartbeat's summary is logged when it completes; its start is in the id (heartbeat-<UTC start>).
        TimeSpan? FirstFailureStart() =>
            firstFailure.Id is { } id && DateTimeOffset.TryParse(id["heartbeat-".Length..], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
                ? at - wallStart : null;
        var detected = FirstFailureStart();
        string Since(TimeSpan? at, TimeSpan? from) => at is { } a && from is { } f ? $"{(a - f).TotalSeconds:0.0} s" : "—";

        var summary = new StringBuilder();
        summary.AppendLine($"| measured | from node start (supervisor recovered at {started.TotalSeconds:0.0} s) | from the first failed heartbeat's start |");
        summary.AppendLine("|---|---|---|");
        summary.AppendLine($"| first failed heartbeat started | {Since(detected, started)} | 0 |");
        summary.AppendLine($"| third consecutive failed heartbeat logged | {Since(escalated.Line?.At, started)} | {Since(escalated.Line?.At, detected)} |");
        summary.AppendLine($"| e-mail to super_admin received (LoopbackSmtpServer) | {Since(email, started)} | {Since(email, detected)} |");
        summary.AppendLine($"| Discord message received (stand-in) | {Since(post, started)} | {Since(post, detected)} |");
        var worst = email is { } e && post is { } p && detected is { } d ? (TimeSpan?)(e > p ? e - d : p - d) : null;
        var verdict = worst is { } w ? $"{w.TotalSeconds:0.0} s from the first failed heartbeat to both channels: goal ≤ {Goal.TotalMinutes:0} min {(w <= Goal ? "met" : "NOT met")}" : "no escalation within the timeout";
        Console.WriteLine();
        Console.WriteLine(summary.ToString());
        Console.WriteLine(verdict);

        if (options.ResultsPath is { } path)
        {
            var heartbeatsTable = string.Join("\n", all.Select(h => $"| {h.Line.At.TotalSeconds:0.0} s | {h.Id} | {h.Status} | {h.ConsecutiveFailures} |"));
            await File.WriteAllTextAsync(path, $"""
                # Escalation latency (issue 11)

                Run {wallStart:u}, failure `{options.Failure}`, one real `clawkeeper run` node with the default heartbeat settings.
                Reproduce: `dotnet run -c Release --project tests/ClawKeeper.Benchmarks -- escalation {string.Join(' ', options.Arguments)}`

                {summary}
                {verdict}

                | logged at | heartbeat | status | consecutive failures |
                |---|---|---|---|
                {heartbeatsTable}

                """, cancellationToken);
            Console.WriteLine($"results written to {path}");
        }
        if (worst is null)
        {
            Console.Error.WriteLine(node.Tail(80));
            return 1;
        }
        return 0;
    }
}
