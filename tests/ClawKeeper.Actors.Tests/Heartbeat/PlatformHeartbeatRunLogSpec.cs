using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Heartbeat;

public class PlatformHeartbeatRunLogSpec
{
    private static HeartbeatReport Report(string id, HeartbeatStatus status) => new(
        id, DateTimeOffset.UtcNow.AddSeconds(-2), DateTimeOffset.UtcNow, status, status == HeartbeatStatus.Fail ? 1 : 0,
        new WriteBlockReport(false),
        new[] { new GroupReport("task_queue", status == HeartbeatStatus.Fail ? CheckStatus.Fail : CheckStatus.Pass, Array.Empty<CheckResult>()) },
        Array.Empty<ActionReport>(), Array.Empty<AlertReport>());

    [Fact]
    public async Task Each_heartbeat_is_one_agent_runs_row_exactly_as_the_protocol_writes_it()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var log = new PlatformHeartbeatRunLog(platform);
        var passed = Report("heartbeat-2026-11-28T04:00:00Z", HeartbeatStatus.Pass);
        var failed = Report("heartbeat-2026-11-28T08:00:00Z", HeartbeatStatus.Fail);

        Assert.Equal(new[] { passed.Id, failed.Id }, await log.RecordAsync(new[] { passed, failed }, CancellationToken.None));
        await log.RecordAsync(new[] { failed }, CancellationToken.None); // a retry after an outage

        var rows = await Sql.RowsAsync(database,
            "select id, tenant_id, agent_id, task_id, status, output->>'status', output->'groups'->0->>'group' from agent_runs order by id");
        Assert.Equal(2, rows.Count);
        Assert.Equal(new object?[] { passed.Id, "system", "clawkeeper", passed.Id, "completed", "pass", "task_queue" }, rows[0]);
        Assert.Equal(new object?[] { failed.Id, "system", "clawkeeper", failed.Id, "failed", "fail", "task_queue" }, rows[1]);
    }

    [Fact]
    public async Task A_database_outage_surfaces_as_an_exception_so_the_row_stays_queued()
    {
        var down = new NpgsqlConnectionStringBuilder(await TestDatabases.CreateMigratedAsync()) { Port = LoopbackHttpServer.RefusingAddress().Port, Timeout = 2 };
        await using var platform = NpgsqlDataSource.Create(down.ConnectionString);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => new PlatformHeartbeatRunLog(platform).RecordAsync(new[] { Report("heartbeat-x", HeartbeatStatus.Pass) }, CancellationToken.None));
    }
}
