using System.Text.Json;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

/// <summary><c>clawkeeper check --once</c> as operators run it from cron or CI: a real process against a real database.</summary>
public class CheckCommandSpec
{
    private static readonly string[] Contract =
    {
        "api_server_responding", "database_connection", "orchestrators_reachable", "worker_pool_capacity", "circuit_breakers_closed",
        "queue_depth", "stuck_tasks", "error_rate", "average_task_latency",
        "audit_log_continuous", "financial_totals_balance", "no_orphaned_records", "rls_policies_active",
        "tenant_isolation", "unauthorized_access_attempts", "api_keys_valid", "rate_limiters_functioning",
        "plaid_connection", "stripe_api_reachable", "quickbooks_sync", "xero_sync",
    };

    private static async Task<ProcessResult> CheckAsync(string database, params string[] extra)
    {
        await using var providers = await LoopbackHttpServer.StartAsync();
        return await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb(database),
            new[] { "check", "--once", "--config", ClawKeeperProcess.ProvidersConfig(providers.BaseAddress) }.Concat(extra).ToArray());
    }

    [Fact]
    public async Task The_seeded_platform_passes_with_exit_0_and_the_run_is_logged_in_agent_runs()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var result = await CheckAsync(database, "--json");
        Assert.True(result.ExitCode == 0, result.ToString());

        using var report = JsonDocument.Parse(result.StandardOutput);
        var root = report.RootElement;
        Assert.Equal("pass", root.GetProperty("status").GetString());
        Assert.Equal(0, root.GetProperty("consecutiveFailures").GetInt32());
        Assert.False(root.GetProperty("writeBlock").GetProperty("active").GetBoolean());
        Assert.Equal(new[] { "system_health", "task_queue", "data_integrity", "security_posture", "integration_health" }, root.GetProperty("groups").EnumerateArray().Select(g => g.GetProperty("group").GetString()));
        var checks = root.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray()).ToList();
        Assert.Equal(Contract, checks.Select(c => c.GetProperty("check").GetString()));
        Assert.All(checks, c =>
        {
            Assert.Contains(c.GetProperty("status").GetString(), new[] { "pass", "skipped" });
            Assert.True(c.TryGetProperty("observed", out _) && c.TryGetProperty("threshold", out _) && c.TryGetProperty("detail", out _) && c.TryGetProperty("durationMs", out _));
        });
        Assert.Equal("skipped", checks.Single(c => c.GetProperty("check").GetString() == "api_server_responding").GetProperty("status").GetString());

        var id = root.GetProperty("id").GetString()!;
        Assert.Matches(@"^heartbeat-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$", id);
        var row = Assert.Single(await Sql.RowsAsync(database, "select tenant_id, agent_id, task_id, status from agent_runs where agent_id = 'clawkeeper'"));
        Assert.Equal(new object?[] { "system", "clawkeeper", id, "completed" }, row);
    }

    [Fact]
    public async Task Each_scenario_fails_its_check_with_evidence_and_exit_1()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            insert into tasks (id, tenant_id, orchestrator, status, created_at)
            select 'flood-' || n, 't-acme-bakery', 'cfo', 'pending', now() from generate_series(1, 150) n;
            insert into tasks (id, tenant_id, orchestrator, status, created_at, assigned_at, started_at, attempts)
            values ('task-stuck-2h', 't-summit-hvac', 'support-lead', 'running', now() - interval '3 hours', now() - interval '2 hours', now() - interval '2 hours', 1);
            insert into tasks (id, tenant_id, orchestrator, status, created_at, started_at, completed_at, attempts, last_error)
            select 'late-' || n, 't-northwind-legal', 'compliance-lead', case when n % 10 = 0 then 'failed' else 'completed' end,
                   now() - interval '20 minutes', now() - interval '10 minutes', now() - interval '10 minutes' + interval '90 seconds', 1,
                   case when n % 10 = 0 then 'filing portal rejected the return' end
            from generate_series(1, 400) n;
            """);

        var result = await CheckAsync(database, "--json");
        Assert.True(result.ExitCode == 1, result.ToString());
        using var report = JsonDocument.Parse(result.StandardOutput);
        Assert.Equal("fail", report.RootElement.GetProperty("status").GetString());
        var checks = report.RootElement.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray())
            .ToDictionary(c => c.GetProperty("check").GetString()!, c => c);

        Assert.Equal("fail", checks["queue_depth"].GetProperty("status").GetString());
        Assert.Contains("cfo 15", checks["queue_depth"].GetProperty("detail").GetString());
        Assert.Equal("fail", checks["stuck_tasks"].GetProperty("status").GetString());
        Assert.Contains("task-stuck-2h", checks["stuck_tasks"].GetProperty("detail").GetString());
        Assert.Equal("fail", checks["error_rate"].GetProperty("status").GetString());
        Assert.Contains("filing portal rejected the return", checks["error_rate"].GetProperty("detail").GetString());
        Assert.Equal("fail", checks["average_task_latency"].GetProperty("status").GetString());
        Assert.Contains("compliance-lead", checks["average_task_latency"].GetProperty("detail").GetString());
        Assert.Equal("pass", checks["database_connection"].GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_dry_run_reports_but_writes_nothing()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var result = await CheckAsync(database, "--dry-run");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("PASS", result.StandardOutput);
        Assert.Contains("dry run", result.StandardOutput);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from agent_runs where agent_id = 'clawkeeper'"));
    }

    [Fact]
    public async Task A_database_that_is_down_fails_the_check_with_exit_1_and_never_shows_the_password()
    {
        var down = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = LoopbackHttpServer.RefusingAddress().Port, Username = "clawkeeper", Password = "s3cret-Passw0rd", Database = "clawkeeper", Timeout = 2,
        };
        var result = await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb(down.ConnectionString), "check", "--once", "--json");
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.DoesNotContain("s3cret-Passw0rd", result.StandardOutput + result.StandardError);
        using var report = JsonDocument.Parse(result.StandardOutput);
        var checks = report.RootElement.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray())
            .ToDictionary(c => c.GetProperty("check").GetString()!, c => c.GetProperty("status").GetString());
        Assert.Equal("fail", checks["database_connection"]);
        Assert.Equal("error", checks["queue_depth"]);
        Assert.Equal("pass", checks["orchestrators_reachable"]);
    }
}
