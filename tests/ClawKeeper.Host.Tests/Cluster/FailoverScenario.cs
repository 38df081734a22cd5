using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.ClusterSpecs;

/// <summary>One heartbeat row of <c>agent_runs</c> with the report stored in it.</summary>
public sealed record HeartbeatRow(string Id, string TaskId, DateTime StartedAt, DateTime CompletedAt, int ConsecutiveFailures, bool WriteBlockActive, long? BlockId, string AuditObserved);

/// <summary>
/// Three real nodes on a seeded platform database and a fresh shared journal, with a supervisor state
/// worth keeping: providers on a refused port (every heartbeat fails), a ledger line changed behind the
/// triggers' back (a write block), super_admin e-mail to an SMTP port nobody listens on (the alerts stay
/// in the outbox) and verified positions (the watermarks of the incremental checks).
/// </summary>
public sealed class FailoverScenario : IAsyncDisposable
{
    public const string OpsToken = "cluster-spec-ops-token";
    public static readonly string OpsTokenSha256 = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(OpsToken)));
    public static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);

    private FailoverScenario(ClawKeeperCluster cluster, string platformDb, int smtpPort)
    {
        Cluster = cluster;
        PlatformDb = platformDb;
        SmtpPort = smtpPort;
    }

    public ClawKeeperCluster Cluster { get; }
    public string PlatformDb { get; }
    public int SmtpPort { get; }

    public static async Task<FailoverScenario> StartAsync(int nodes = 3)
    {
        var platformDb = await TestDatabases.CreateSeededAsync();
        var journalDb = await TestDatabases.CreateEmptyAsync();

        var refused = ClawKeeperCluster.FreeTcpPort();
        var smtpPort = ClawKeeperCluster.FreeTcpPort();
        var config = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-cluster-config-").FullName, "cluster.conf");
        var providers = string.Join("\n", new[] { "plaid", "stripe", "quickbooks", "xero" }.Select(p =>
            $"clawkeeper.integrations.{p} {{ base-url = \"http://127.0.0.1:{refused}/{p}/\", health-path = \"health\" }}"));
        await File.WriteAllTextAsync(config, $$"""
            clawkeeper {
              # retry: soft/hard check states (when the build has them): every failure hard at once, so
              # each failed heartbeat counts (ignored by builds without soft/hard states).
              heartbeat { interval = 4s, initial-delay = 1s, group-timeout = 3s, retry { interval = 1s, max-attempts = 1 } }
              # Observe the platform; the fleet's claiming across nodes has its own spec.
              fleet.claim-tasks = off
              alerts {
                retry { min-backoff = 200ms, max-backoff = 1s }
                smtp { host = "127.0.0.1", port = {{smtpPort}}, tls = none, timeout = 5s }
                audiences.super_admin.email = ["super-admin@example.test"]
              }
            }
            {{providers}}
            """);

        var cluster = new ClawKeeperCluster(new ClusterNodeOptions
        {
            AssemblyPath = ClawKeeperProcess.AssemblyPath,
            PlatformDb = platformDb,
            JournalDb = journalDb,
            ConfigFile = config,
            OpsTokenSha256 = OpsTokenSha256,
        });
        try
        {
            await cluster.StartAsync(nodes, Generous);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return new FailoverScenario(cluster, platformDb, smtpPort);
    }

    /// <summary>
    /// Brings the singleton into the state worth keeping and returns its node: a passing full verification
    /// (watermarks and the time of the last full verification), then a verified audit entry rewritten
    /// behind the triggers' back, found by an incremental round: write block, super_admin alert (undelivered),
    /// and at least <paramref name="failures"/> consecutive failed heartbeats.
    /// </summary>
    public async Task<ClawKeeperNodeProcess> PrepareHolderAsync(int failures = 2)
    {
        var holder = Cluster.SingletonHolder() ?? throw new Xunit.Sdk.XunitException("no node recovered the supervisor\n" + Cluster.Tails());
        await WaitForRowsAsync(rows => rows.Any(r => r.AuditObserved.Contains("(full verification)") && r.AuditObserved.Contains("entries verified")),
            "a passing full verification");
        await using (var connection = await Sql.OpenAsync(PlatformDb))
        {
            await Sql.ExecuteAsync(connection, "set session_replication_role = replica");
            var changed = await Sql.ExecuteAsync(connection, """
                update audit_log set hash = repeat('0', 64)
                where (tenant_id, seq) = (select tenant_id, max(seq) from audit_log where tenant_id <> 'system' group by tenant_id order by tenant_id limit 1)
                """);
            Assert.Equal(1, changed);
        }
        await WaitForRowsAsync(rows => rows.Any(r => r.WriteBlockActive && r.ConsecutiveFailures >= failures && r.AuditObserved.Contains("(incremental)")),
            $"a write block found by an incremental round and {failures} consecutive failures");
        Assert.Equal(holder, Cluster.SingletonHolder());
        return holder;
    }

    private async Task WaitForRowsAsync(Func<IReadOnlyList<HeartbeatRow>, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Generous;
        IReadOnlyList<HeartbeatRow> rows = [];
        while (DateTime.UtcNow < deadline)
        {
            rows = await HeartbeatRowsAsync();
            if (condition(rows)) return;
            await Task.Delay(250);
        }
        Assert.Fail($"waited in vain for {what}: {string.Join("; ", rows.Select(r => $"{r.Id} failures={r.ConsecutiveFailures} block={r.WriteBlockActive} audit={r.AuditObserved}"))}\n{Cluster.Tails()}");
    }

    /// <summary>The numbers in a "Heartbeat supervisor recovered: ..." line.</summary>
    public static (int Recorded, int ConsecutiveFailures, bool WriteBlockActive) ParseRecovery(string line)
    {
        var m = Regex.Match(line, @"recovered: (?<r>\d+) heartbeats recorded, (?<n>\d+) consecutive failures, write block (?<wb>\S+)");
        Assert.True(m.Success, "not a recovery line: " + line);
        return (int.Parse(m.Groups["r"].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture),
            m.Groups["wb"].Value == "active");
    }

    /// <summary>Every heartbeat row in agent_runs, oldest first.</summary>
    public async Task<IReadOnlyList<HeartbeatRow>> HeartbeatRowsAsync()
    {
        var rows = await Sql.RowsAsync(PlatformDb, """
            select id, task_id, started_at, completed_at, output::text from agent_runs
            where agent_id = 'clawkeeper' and tenant_id = 'system' order by started_at, id
            """);
        return rows.Select(r =>
        {
            using var report = JsonDocument.Parse((string)r[4]!);
            var root = report.RootElement;
            var block = root.GetProperty("writeBlock");
            var audit = root.GetProperty("groups").EnumerateArray()
                .SelectMany(g => g.GetProperty("checks").EnumerateArray())
                .FirstOrDefault(c => c.GetProperty("check").GetString() == "audit_log_continuous");
            return new HeartbeatRow((string)r[0]!, (string)r[1]!, (DateTime)r[2]!, (DateTime)r[3]!,
                root.GetProperty("consecutiveFailures").GetInt32(),
                block.GetProperty("active").GetBoolean(),
                block.TryGetProperty("blockId", out var id) && id.ValueKind == JsonValueKind.Number ? id.GetInt64() : null,
                audit.ValueKind == JsonValueKind.Object ? audit.GetProperty("observed").GetString() ?? "" : "");
        }).ToList();
    }

    /// <summary>
    /// The invariants across every move of the singleton: rows never overlap in time and have distinct
    /// ids; the consecutive-failure count goes 1, 2, 3, ... without a reset (state carried over); one
    /// write block, the same in every report once imposed.
    /// </summary>
    public async Task<IReadOnlyList<HeartbeatRow>> AssertContinuousHistoryAsync()
    {
        var rows = await HeartbeatRowsAsync();
        var text = string.Join("\n", rows.Select(r => $"{r.Id} {r.StartedAt:HH:mm:ss.fff}..{r.CompletedAt:HH:mm:ss.fff} failures={r.ConsecutiveFailures} block={r.BlockId} audit={r.AuditObserved}"));
        Assert.Equal(rows.Count, rows.Select(r => r.Id).Distinct().Count());
        Assert.Equal(rows.Count, rows.Select(r => r.TaskId).Distinct().Count());
        for (var i = 1; i < rows.Count; i++)
            Assert.True(rows[i].StartedAt >= rows[i - 1].CompletedAt, $"heartbeats overlap: {rows[i - 1].Id} and {rows[i].Id}\n{text}");
        Assert.Equal(Enumerable.Range(1, rows.Count), rows.Select(r => r.ConsecutiveFailures));
        var blocks = rows.Where(r => r.WriteBlockActive).Select(r => r.BlockId).Distinct().ToList();
        Assert.True(blocks.Count == 1 && blocks[0] is not null, $"one write block expected in every report once imposed\n{text}");
        Assert.Equal(1L, await Sql.ScalarAsync<long>(PlatformDb, "select count(*) from write_blocks"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(PlatformDb, "select count(*) from write_blocks where lifted_at is not null"));
        return rows;
    }

    public ValueTask DisposeAsync() => Cluster.DisposeAsync();
}
