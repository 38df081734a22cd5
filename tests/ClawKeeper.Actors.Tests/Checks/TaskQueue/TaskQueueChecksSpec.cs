using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.TaskQueue;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.TaskQueue;

/// <summary>The four task-queue checks against a real PostgreSQL, with the scenario rows inserted.</summary>
public class TaskQueueChecksSpec
{
    private static readonly TaskQueueSettings Settings = new(
        Timeout: TimeSpan.FromSeconds(10), MaxPending: 100, StuckAfter: TimeSpan.FromHours(1), Window: TimeSpan.FromHours(1),
        MaxErrorRate: 0.05, MaxAverageLatency: TimeSpan.FromSeconds(60), SampleSize: 5);

    private static readonly CheckContext Context = new("heartbeat-test", DateTimeOffset.UtcNow, null);

    private static async Task<CheckResult> Run(IPlatformCheck check) => await CheckRunner.RunOneAsync(check, Context, CancellationToken.None);

    private static IPlatformCheck[] All(NpgsqlDataSource platform) => new IPlatformCheck[]
    {
        new QueueDepthCheck(platform, Settings), new StuckTasksCheck(platform, Settings),
        new ErrorRateCheck(platform, Settings), new AverageTaskLatencyCheck(platform, Settings),
    };

    private static async Task<string> TenantDatabaseAsync()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database, "insert into tenants (id, name, status) values ('t-scenario', 'Scenario Ltd', 'active')");
        return database;
    }

    [Fact]
    public async Task The_seeded_demo_platform_passes_every_queue_check()
    {
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        foreach (var check in All(platform))
        {
            var result = await Run(check);
            Assert.True(result.Status == CheckStatus.Pass, $"{result.Check}: {result.Status} {result.Observed} {result.Detail}");
        }
    }

    [Fact]
    public async Task Queue_depth_fails_with_150_pending_tasks()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var before = await Sql.ScalarAsync<long>(database, "select count(*) from tasks where status = 'pending'");
        await Sql.ExecuteAsync(database, """
            insert into tasks (id, tenant_id, orchestrator, status, created_at)
            select 'flood-' || n, 't-acme-bakery', 'accounts-payable-lead', 'pending', now() - make_interval(mins => n)
            from generate_series(1, 150) n
            """);
        await using var platform = NpgsqlDataSource.Create(database);
        var result = await Run(new QueueDepthCheck(platform, Settings));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal($"{before + 150} pending", result.Observed);
        Assert.Equal("pending < 100", result.Threshold);
        Assert.Contains($"accounts-payable-lead {150 + await Sql.ScalarAsync<long>(database, "select count(*) from tasks where status = 'pending' and orchestrator = 'accounts-payable-lead' and id not like 'flood-%'")}", result.Detail);
    }

    [Fact]
    public async Task Stuck_tasks_fails_on_a_task_running_for_two_hours_and_names_it()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, """
            insert into tasks (id, tenant_id, orchestrator, status, created_at, assigned_at, started_at, attempts)
            values ('task-stuck-2h', 't-harbor-dental', 'reconciliation-lead', 'running', now() - interval '2 hours 5 minutes', now() - interval '2 hours 1 minute', now() - interval '2 hours', 1)
            """);
        await using var platform = NpgsqlDataSource.Create(database);
        var result = await Run(new StuckTasksCheck(platform, Settings));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.StartsWith("1 stuck of ", result.Observed);
        Assert.Contains("task-stuck-2h (t-harbor-dental, reconciliation-lead, running for 0.02:00:", result.Detail);
    }

    [Fact]
    public async Task Error_rate_fails_at_ten_percent_failed()
    {
        var database = await TenantDatabaseAsync();
        await Sql.ExecuteAsync(database, """
            insert into tasks (id, tenant_id, orchestrator, status, created_at, started_at, completed_at, attempts, last_error)
            select 'run-' || n, 't-scenario', 'cfo', case when n <= 10 then 'failed' else 'completed' end,
                   now() - interval '30 minutes', now() - interval '20 minutes', now() - interval '20 minutes' + interval '10 seconds', 1,
                   case when n <= 10 then 'ledger API timed out' end
            from generate_series(1, 100) n
            """);
        await using var platform = NpgsqlDataSource.Create(database);
        var result = await Run(new ErrorRateCheck(platform, Settings));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal("10.0 % (10/100 failed)", result.Observed);
        Assert.Contains("(cfo: ledger API timed out)", result.Detail);

        // Failures outside the window do not count.
        await Sql.ExecuteAsync(database, "update tasks set completed_at = now() - interval '3 hours' where status = 'failed'");
        Assert.Equal(CheckStatus.Pass, (await Run(new ErrorRateCheck(platform, Settings))).Status);
    }

    [Fact]
    public async Task Average_latency_fails_at_90_seconds()
    {
        var database = await TenantDatabaseAsync();
        await Sql.ExecuteAsync(database, """
            insert into tasks (id, tenant_id, orchestrator, status, created_at, started_at, completed_at, attempts)
            select 'slow-' || n, 't-scenario', 'reporting-lead', 'completed', now() - interval '40 minutes', now() - interval '30 minutes',
                   now() - interval '30 minutes' + interval '90 seconds', 1
            from generate_series(1, 20) n
            """);
        await using var platform = NpgsqlDataSource.Create(database);
        var result = await Run(new AverageTaskLatencyCheck(platform, Settings));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal("mean 90.0 s over 20 tasks (max 90.0 s)", result.Observed);
        Assert.Contains("reporting-lead 90.0 s", result.Detail);
    }

    [Fact]
    public async Task A_window_with_nothing_finished_says_so_instead_of_passing()
    {
        await using var platform = NpgsqlDataSource.Create(await TenantDatabaseAsync());
        var errorRate = await Run(new ErrorRateCheck(platform, Settings));
        var latency = await Run(new AverageTaskLatencyCheck(platform, Settings));
        Assert.Equal(CheckStatus.Warn, errorRate.Status);
        Assert.Contains("cannot be computed", errorRate.Detail);
        Assert.Equal(CheckStatus.Warn, latency.Status);
        Assert.Equal(CheckStatus.Pass, (await Run(new QueueDepthCheck(platform, Settings))).Status);
    }

    [Fact]
    public async Task A_database_that_is_down_makes_every_queue_check_an_error()
    {
        var down = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = LoopbackHttpServer.RefusingAddress().Port, Username = "nobody", Password = "secret-password", Database = "clawkeeper", Timeout = 2,
        };
        await using var platform = NpgsqlDataSource.Create(down.ConnectionString);
        foreach (var check in All(platform))
        {
            var result = await Run(check);
            Assert.Equal(CheckStatus.Error, result.Status);
            Assert.Contains("platform database unavailable", result.Detail);
            Assert.DoesNotContain("secret-password", result.Detail);
        }
    }

    [Fact]
    public async Task A_monitoring_role_under_row_level_security_is_an_error_not_a_silent_pass()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var role = "ck_rls_" + Guid.NewGuid().ToString("N")[..8];
        await Sql.ExecuteAsync(database, $"create role {role} login password 'probe-pass' nosuperuser nobypassrls; grant select on tasks to {role}");
        var restricted = new NpgsqlConnectionStringBuilder(database) { Username = role, Password = "probe-pass" };
        await using var platform = NpgsqlDataSource.Create(restricted.ConnectionString);
        foreach (var check in All(platform))
        {
            var result = await Run(check);
            Assert.Equal(CheckStatus.Error, result.Status);
            Assert.Contains("row-level security", result.Detail);
        }
    }
}
