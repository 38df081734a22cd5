using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Outage;

/// <summary>A heartbeat the scenario saw (on /heartbeat/latest or in a node's log), first seen at <see cref="SeenAt"/>.</summary>
public sealed record ObservedHeartbeat(string Id, string Status, int ConsecutiveFailures, TimeSpan SeenAt, string Node, string Source, string? DatabaseCheck);

/// <summary>An e-mail the SMTP server received, with when the scenario first saw it.</summary>
public sealed record SeenMail(ReceivedMail Mail, TimeSpan SeenAt)
{
    public string Kind => Mail.Message.Headers["X-ClawKeeper-Kind"] ?? "";
    public string Audience => Mail.Message.Headers["X-ClawKeeper-Audience"] ?? "";
    public string Subject => Mail.Message.Subject ?? "";
    public string Body => Mail.Message.TextBody ?? "";
    public bool IsEscalation => Body.Contains(DatabaseOutageScenario.EscalationDedupKey, StringComparison.Ordinal);
    public override string ToString() => $"{SeenAt.TotalSeconds:0.0}s [{Kind} to {string.Join(",", Mail.EnvelopeTo)}] {Subject}";
}

/// <summary>One heartbeat row of <c>agent_runs</c> (agent <c>clawkeeper</c>, tenant <c>system</c>).</summary>
public sealed record HeartbeatRunRow(string Id, string TaskId, string Status, DateTime StartedAt, int ConsecutiveFailures, string? DatabaseCheck, string? DatabaseDetail);

/// <summary>
/// Issue 11, item 2 ("never silent") with real parts: one <c>clawkeeper run</c> process whose platform database AND
/// Akka journal live in one database on a PostgreSQL server of the test's own (<see cref="StoppablePostgres"/>), a real
/// SMTP server and a Discord webhook stand-in on loopback, super_admin's address and webhook given by environment,
/// providers answered by a loopback stand-in (every check can pass). The scenario stops and starts the server and kills
/// and restarts the node; a poller records every heartbeat (GET /heartbeat/latest and the node's summary lines) and
/// when each e-mail was first seen, on one clock.
/// </summary>
public sealed class DatabaseOutageScenario : IAsyncDisposable
{
    public const string SuperAdminAddress = "super-admin@clawkeeper.test";
    public const string EscalationDedupKey = "heartbeat:consecutive-failures:super_admin";
    public const string DatabaseCheck = "database_connection";

    /// <summary>Every wait of the scenario: a busy 2-core machine builds and tests seven branches at once.</summary>
    public static readonly TimeSpan Generous = TimeSpan.FromMinutes(4);

    private readonly ConcurrentDictionary<string, ObservedHeartbeat> _heartbeats = new();
    private readonly ConcurrentDictionary<int, TimeSpan> _mailSeen = new();
    private readonly CancellationTokenSource _stopPolling = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly List<string> _timeline = new();
    private Task _poller = Task.CompletedTask;

    private DatabaseOutageScenario(Stopwatch clock) => Clock = clock;

    public Stopwatch Clock { get; }
    public StoppablePostgres Postgres { get; private set; } = null!;
    public LoopbackSmtpServer Smtp { get; private set; } = null!;
    public DiscordWebhookStandIn Discord { get; private set; } = null!;
    public LoopbackHttpServer Providers { get; private set; } = null!;
    public ClawKeeperCluster Cluster { get; private set; } = null!;
    public string ConfigFile { get; private set; } = "";

    /// <summary>The node process running now (the last one started).</summary>
    public ClawKeeperNodeProcess Node { get; private set; } = null!;

    public IReadOnlyList<string> Timeline
    {
        get { lock (_timeline) return _timeline.ToList(); }
    }

    /// <summary>Starts everything and the node; returns once the node's supervisor recovered.</summary>
    public static async Task<DatabaseOutageScenario> StartAsync(TimeSpan heartbeatInterval, TimeSpan retryInterval)
    {
        var scenario = new DatabaseOutageScenario(Stopwatch.StartNew());
        try
        {
            await scenario.StartPartsAsync(heartbeatInterval, retryInterval);
            return scenario;
        }
        catch
        {
            await scenario.DisposeAsync();
            throw;
        }
    }

    private async Task StartPartsAsync(TimeSpan heartbeatInterval, TimeSpan retryInterval)
    {
        Postgres = await StoppablePostgres.StartAsync();
        Smtp = await LoopbackSmtpServer.StartAsync();
        Discord = await DiscordWebhookStandIn.StartAsync(Clock);
        Providers = await LoopbackHttpServer.StartAsync();
        Note($"PostgreSQL 127.0.0.1:{Postgres.Port} (platform and journal in database {StoppablePostgres.DatabaseName}), SMTP 127.0.0.1:{Smtp.Port}, Discord stand-in {Discord.BaseAddress}");

        ConfigFile = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-outage-config-").FullName, "node.conf");
        await File.WriteAllTextAsync(ConfigFile, ProviderStandIns.Hocon(Providers.BaseAddress) + $$"""

            clawkeeper {
              heartbeat {
                interval = {{Seconds(heartbeatInterval)}}
                initial-delay = 1s
                group-timeout = {{Seconds(heartbeatInterval - TimeSpan.FromSeconds(2))}}
                retry { interval = {{Seconds(retryInterval)}}, max-attempts = 3 }
              }
              # The node observes the platform; the fleet's own outage handling has its own specs.
              fleet.claim-tasks = off
              # What is asserted is the outage, not the speed of a busy test machine.
              checks.system-health.api-server { max-response-time = 10s, timeout = 5s }
              checks.security-posture.rate-limiter.burst-timeout = 6s
              alerts {
                retry { min-backoff = 200ms, max-backoff = 2s }
                smtp.timeout = 10s
              }
            }
            """);

        Cluster = new ClawKeeperCluster(new ClusterNodeOptions
        {
            AssemblyPath = ClawKeeperProcess.AssemblyPath,
            PlatformDb = Postgres.ConnectionString,
            JournalDb = Postgres.ConnectionString,
            ConfigFile = ConfigFile,
            Seeds = 1,
            Environment = new Dictionary<string, string?>
            {
                ["CLAWKEEPER_SMTP_HOST"] = "127.0.0.1",
                ["CLAWKEEPER_SMTP_PORT"] = Smtp.Port.ToString(CultureInfo.InvariantCulture),
                ["CLAWKEEPER_SMTP_TLS"] = "none",
                ["CLAWKEEPER_SMTP_FROM"] = "ClawKeeper <clawkeeper@clawkeeper.test>",
                ["CLAWKEEPER_ALERT_EMAIL_SUPER_ADMIN"] = SuperAdminAddress,
                ["CLAWKEEPER_DISCORD_WEBHOOK_SUPER_ADMIN"] = Discord.Webhook.AbsoluteUri,
            },
        });
        await Cluster.StartAsync(1, Generous);
        Node = Cluster.Nodes.Single();
        Note($"{Node.Name} up (pid {Node.Process.Id}, ops {Node.OpsUri})");
        _poller = Task.Run(() => PollAsync(_stopPolling.Token));
    }

    private static string Seconds(TimeSpan span) => $"{span.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)}ms";

    public void Note(string text)
    {
        lock (_timeline) _timeline.Add($"{Clock.Elapsed.TotalSeconds,7:0.0}s {text}");
    }

    // ---- observation -------------------------------------------------------------------------

    /// <summary>Every heartbeat seen so far, in the order first seen.</summary>
    public IReadOnlyList<ObservedHeartbeat> Heartbeats => _heartbeats.Values.OrderBy(h => h.SeenAt).ThenBy(h => h.Id, StringComparer.Ordinal).ToList();

    /// <summary>Every e-mail received so far, with when it was first seen.</summary>
    public IReadOnlyList<SeenMail> Mails
    {
        get
        {
            var received = Smtp.Received.ToArray();
            return received.Select((m, i) => new SeenMail(m, _mailSeen.TryGetValue(i, out var at) ? at : Clock.Elapsed)).ToList();
        }
    }

    public IReadOnlyList<DiscordMessage> DiscordMessages => Discord.Messages.ToArray();

    private async Task PollAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var now = Clock.Elapsed;
            var count = Smtp.Received.Count;
            for (var i = 0; i < count; i++) _mailSeen.TryAdd(i, now);

            foreach (var node in Cluster.Nodes.ToList())
            foreach (var (line, id, status, failures) in node.Heartbeats)
                _heartbeats.TryAdd(id, new ObservedHeartbeat(id, status, failures, now, node.Name, "log", null));

            var current = Node;
            if (!current.HasExited)
            {
                try
                {
                    using var response = await _http.GetAsync(new Uri(current.OpsUri, "heartbeat/latest"), stop);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        using var report = JsonDocument.Parse(await response.Content.ReadAsStringAsync(stop));
                        var root = report.RootElement;
                        var id = root.GetProperty("id").GetString()!;
                        var database = Checks(root).FirstOrDefault(c => c.GetProperty("check").GetString() == DatabaseCheck);
                        var seen = new ObservedHeartbeat(id, root.GetProperty("status").GetString()!, root.GetProperty("consecutiveFailures").GetInt32(),
                            Clock.Elapsed, current.Name, "ops", database.ValueKind == JsonValueKind.Object ? database.GetProperty("status").GetString() : null);
                        // The ops view carries the database check: it wins over a log line of the same heartbeat.
                        _heartbeats.AddOrUpdate(id, seen, (_, old) => old.Source == "log" ? seen with { SeenAt = old.SeenAt } : old);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    // The node is busy, starting or gone: the next poll tries again (its log lines still count).
                }
            }

            try
            {
                await Task.Delay(150, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static IEnumerable<JsonElement> Checks(JsonElement report) =>
        report.TryGetProperty("groups", out var groups)
            ? groups.EnumerateArray().SelectMany(g => g.TryGetProperty("checks", out var checks) ? checks.EnumerateArray() : Enumerable.Empty<JsonElement>())
            : Enumerable.Empty<JsonElement>();

    /// <summary>Polls <paramref name="probe"/> until it returns a value (or the time is up: then fails with <paramref name="what"/> and the context).</summary>
    public async Task<T> WaitForAsync<T>(string what, Func<Task<T?>> probe, TimeSpan? timeout = null) where T : class
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? Generous;
        while (true)
        {
            if (await probe() is { } found) return found;
            if (deadline.Elapsed > limit) Assert.Fail($"waited {limit} in vain for {what}\n{Context()}");
            await Task.Delay(200);
        }
    }

    public Task<T> WaitForAsync<T>(string what, Func<T?> probe, TimeSpan? timeout = null) where T : class =>
        WaitForAsync(what, () => Task.FromResult(probe()), timeout);

    /// <summary>What the scenario saw, for failure messages: timeline, heartbeats, e-mails, Discord messages, node logs.</summary>
    public string Context() =>
        "--- timeline ---\n" + string.Join("\n", Timeline)
        + "\n--- heartbeats seen ---\n" + string.Join("\n", Heartbeats.Select(h => $"{h.SeenAt.TotalSeconds,7:0.0}s {h.Node} {h.Id} {h.Status} n={h.ConsecutiveFailures} db={h.DatabaseCheck ?? "?"} ({h.Source})"))
        + "\n--- e-mails ---\n" + string.Join("\n", Mails.Select(m => m.ToString()))
        + "\n--- discord ---\n" + string.Join("\n", DiscordMessages.Select(d => $"{d.At.TotalSeconds,7:0.0}s {d.Content}"))
        + "\n--- postgres log ---\n" + Postgres.LogTail(10)
        + "\n" + Cluster.Tails(80);

    // ---- the node -----------------------------------------------------------------------------

    /// <summary>SIGKILL of the node's process tree; returns when it is gone.</summary>
    public async Task KillNodeAsync()
    {
        var node = Node;
        node.Kill();
        Assert.True(await node.WaitForExitAsync(TimeSpan.FromSeconds(30)), $"{node.Name} did not exit after SIGKILL");
        Note($"{node.Name} killed (SIGKILL)");
    }

    /// <summary>
    /// The killed node again: same ports, same working directory (the same local files). Returns once it is started
    /// (its ops port answers /health/live), not waiting for the journal. The ops surface (Ceen.Httpd) binds without
    /// address reuse, so while the killed process's connections sit in TIME_WAIT (up to a minute on Linux) the new
    /// process exits with "Address already in use": it is started again, as a service manager would, until it binds.
    /// </summary>
    public async Task<ClawKeeperNodeProcess> StartNodeAgainAsync()
    {
        var since = Clock.Elapsed;
        var attempts = 0;
        while (true)
        {
            var node = Cluster.StartAgain(Node);
            Node = node;
            attempts++;
            Note($"{node.Name} started (pid {node.Process.Id}, same ports and working directory)");
            var live = await WaitForAsync($"{node.Name}'s ops port to answer", async () =>
            {
                if (node.HasExited) return "exited";
                try
                {
                    using var response = await _http.GetAsync(new Uri(node.OpsUri, "health/live"));
                    return response.IsSuccessStatusCode ? "live" : null;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return null;
                }
            });
            if (live == "live")
            {
                Note($"{node.Name} answers on its ops port");
                if (attempts > 1)
                    Note($"MEASURED the ops port {node.OpsPort} could be bound again {(Clock.Elapsed - since).TotalSeconds:0.0} s after the kill ({attempts} starts)");
                return node;
            }
            await node.WaitForExitAsync(TimeSpan.FromSeconds(10));
            var portTaken = node.Lines.Any(l => l.Text.Contains("ops surface could not listen", StringComparison.Ordinal) && l.Text.Contains("Address already in use", StringComparison.Ordinal));
            if (!portTaken || Clock.Elapsed - since > Generous)
                Assert.Fail($"{node.Name} exited with {node.Process.ExitCode}\n{Context()}");
            Note($"{node.Name} exited: its ops port {node.OpsPort} is still in TIME_WAIT after the kill; starting it again in 5 s");
            await Task.Delay(TimeSpan.FromSeconds(5));
        }
    }

    /// <summary>GET /health/ready of the current node: the status code and each condition (name, ok, detail).</summary>
    public async Task<(HttpStatusCode Status, IReadOnlyList<(string Condition, bool Ok, string Detail)> Conditions)> ReadinessAsync()
    {
        using var response = await _http.GetAsync(new Uri(Node.OpsUri, "health/ready"));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var conditions = body.RootElement.GetProperty("conditions").EnumerateArray()
            .Select(c => (c.GetProperty("condition").GetString() ?? "", c.GetProperty("ok").GetBoolean(), c.TryGetProperty("detail", out var d) ? d.GetString() ?? "" : ""))
            .ToList();
        return (response.StatusCode, conditions);
    }

    /// <summary>A gauge of the current node's GET /metrics (Prometheus text), or null when it is not there.</summary>
    public async Task<double?> MetricAsync(string name)
    {
        var text = await _http.GetStringAsync(new Uri(Node.OpsUri, "metrics"));
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length <= name.Length || (line[name.Length] != ' ' && line[name.Length] != '{')) continue;
            var value = line[(line.LastIndexOf(' ') + 1)..].Trim();
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed)) return parsed;
        }
        return null;
    }

    // ---- the platform database ------------------------------------------------------------------

    /// <summary>Every heartbeat row in agent_runs, oldest first (the server must be up).</summary>
    public async Task<IReadOnlyList<HeartbeatRunRow>> HeartbeatRowsAsync()
    {
        var rows = await Sql.RowsAsync(Postgres.ConnectionString, """
            select id, coalesce(task_id, ''), status, started_at, output::text from agent_runs
            where agent_id = 'clawkeeper' and tenant_id = 'system' order by started_at, id
            """);
        return rows.Select(r =>
        {
            using var report = JsonDocument.Parse((string?)r[4] ?? "{}");
            var root = report.RootElement;
            var database = Checks(root).FirstOrDefault(c => c.GetProperty("check").GetString() == DatabaseCheck);
            return new HeartbeatRunRow((string)r[0]!, (string)r[1]!, (string)r[2]!, (DateTime)r[3]!,
                root.TryGetProperty("consecutiveFailures", out var n) ? n.GetInt32() : -1,
                database.ValueKind == JsonValueKind.Object ? database.GetProperty("status").GetString() : null,
                database.ValueKind == JsonValueKind.Object && database.TryGetProperty("detail", out var detail) ? detail.GetString() : null);
        }).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        // Everything goes, whatever failed: the poller, the node processes, the servers.
        await _stopPolling.CancelAsync();
        try
        {
            await _poller.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
            // stopping
        }
        if (Cluster is not null) await Cluster.DisposeAsync();
        if (Providers is not null) await Providers.DisposeAsync();
        if (Discord is not null) await Discord.DisposeAsync();
        if (Smtp is not null) await Smtp.DisposeAsync();
        if (Postgres is not null) await Postgres.DisposeAsync();
        _http.Dispose();
        _stopPolling.Dispose();
    }
}
