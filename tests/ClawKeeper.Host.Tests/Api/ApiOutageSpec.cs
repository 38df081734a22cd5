using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>The platform database goes away (its TCP path is cut) while tasks are submitted.</summary>
public class ApiOutageSpec
{
    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(60));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for: {what}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Tasks_submitted_during_an_outage_are_queued_and_written_exactly_once_when_the_database_returns()
    {
        await using var api = await ApiTestServer.StartAsync();
        // Validated while the database is up: usable from the key cache during the outage.
        Assert.Equal(201, (await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = "before" })).Status);

        api.Proxy.Cut();
        var ids = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            var (status, body, response) = await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "reconciliation-lead", id = $"during-{i}", payload = new { n = i } });
            Assert.True(status == 202, $"submission {i}: {status} {body}");
            Assert.Equal("queued", body.GetProperty("status").GetString());
            ids.Add(body.GetProperty("id").GetString()!);
        }
        // A repeat of a queued submission is not queued twice.
        Assert.Equal(202, (await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "reconciliation-lead", id = "during-0" })).Status);

        var (read, queued, _) = await api.SendAsync(HttpMethod.Get, $"api/tasks/{ids[3]}", ApiTestServer.AcmeKey);
        Assert.Equal(200, read);
        Assert.Equal("queued", queued.GetProperty("status").GetString());
        // Another tenant does not see it in the buffer either.
        Assert.NotEqual(200, (await api.SendAsync(HttpMethod.Get, $"api/tasks/{ids[3]}", ApiTestServer.GlobexKey)).Status);

        var (health, healthBody, _) = await api.SendAsync(HttpMethod.Get, "health", null);
        Assert.Equal(200, health); // a database outage does not make the API "down"
        Assert.Equal("unreachable", healthBody.GetProperty("database").GetString());
        Assert.Equal(1, await api.TasksAsync());
        Assert.Equal(12, await api.Server.Buffer.CountAsync(CancellationToken.None));

        api.Proxy.Restore();
        await EventuallyAsync(async () => await api.Server.Buffer.CountAsync(CancellationToken.None) == 0, "the buffer drains");
        var rows = await Sql.RowsAsync(api.Database, "SELECT id, count(*) OVER (PARTITION BY id), payload->>'n' FROM tasks WHERE orchestrator = 'reconciliation-lead' ORDER BY created_at");
        Assert.Equal(ids, rows.Select(r => (string)r[0]!).ToList());           // every one, in the order accepted
        Assert.All(rows, r => Assert.Equal(1L, r[1]));                          // exactly once
        Assert.Equal(Enumerable.Range(0, 12).Select(i => i.ToString()).ToList(), rows.Select(r => (string)r[2]!).ToList());
        Assert.Equal(13, await api.TasksAsync());

        var (after, task, _) = await api.SendAsync(HttpMethod.Get, $"api/tasks/{ids[3]}", ApiTestServer.AcmeKey);
        Assert.Equal(200, after);
        Assert.Equal("pending", task.GetProperty("status").GetString());
        Assert.Equal(201, (await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = "after" })).Status);
    }

    [Fact]
    public async Task A_full_buffer_answers_503_with_Retry_After_and_loses_nothing()
    {
        await using var api = await ApiTestServer.StartAsync(s => s with { BufferCapacity = 3 });
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.GlobexKey)).Status);
        api.Proxy.Cut();

        var accepted = new List<string>();
        var refused = 0;
        for (var i = 0; i < 5; i++)
        {
            var (status, body, response) = await api.SubmitAsync(ApiTestServer.GlobexKey, new { orchestrator = "support-lead", id = $"t-{i}" });
            if (status == 202)
            {
                accepted.Add(body.GetProperty("id").GetString()!);
                continue;
            }
            Assert.Equal(503, status);
            Assert.Equal("buffer_full", body.GetProperty("error").GetString());
            Assert.Equal("7", response.Headers.GetValues("Retry-After").Single());
            refused++;
        }
        Assert.Equal(3, accepted.Count);
        Assert.Equal(2, refused);

        api.Proxy.Restore();
        await EventuallyAsync(async () => await Sql.ScalarAsync<long>(api.Database, "SELECT count(*) FROM tasks") == 3, "the 3 accepted tasks arrive");
        var written = (await Sql.RowsAsync(api.Database, "SELECT id FROM tasks ORDER BY id")).Select(r => (string)r[0]!).ToList();
        Assert.Equal(accepted.OrderBy(x => x, StringComparer.Ordinal).ToList(), written);
        await EventuallyAsync(async () => await api.Server.Buffer.CountAsync(CancellationToken.None) == 0, "the buffer drains");
        // Room again; the database is back, so a new submission is written directly.
        Assert.Equal(201, (await api.SubmitAsync(ApiTestServer.GlobexKey, new { orchestrator = "support-lead", id = "t-3" })).Status);
    }

    [Fact]
    public async Task During_an_outage_a_key_not_validated_recently_gets_503_and_is_never_accepted()
    {
        await using var api = await ApiTestServer.StartAsync();
        api.Proxy.Cut();
        // Let a request notice the outage first (the gate closes on the first failure).
        await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.GlobexSpareKey);

        foreach (var key in new[] { ApiTestServer.GlobexSpareKey, "ck_unknown_during_outage" })
        {
            var (status, body, response) = await api.SubmitAsync(key, new { orchestrator = "cfo" });
            Assert.Equal(503, status);
            Assert.Equal("database_unavailable", body.GetProperty("error").GetString());
            Assert.True(response.Headers.Contains("Retry-After"));
        }
        Assert.Equal(0, await api.Server.Buffer.CountAsync(CancellationToken.None));

        api.Proxy.Restore();
        await EventuallyAsync(async () => (await api.SendAsync(HttpMethod.Get, "health", null)).Body.GetProperty("database").GetString() == "reachable",
            "the API sees the database again");
        Assert.Equal(201, (await api.SubmitAsync(ApiTestServer.GlobexSpareKey, new { orchestrator = "cfo" })).Status);
        Assert.Equal(401, (await api.SubmitAsync("ck_unknown_during_outage", new { orchestrator = "cfo" })).Status);
    }

    [Fact]
    public async Task Buffered_tasks_survive_a_restart_of_the_node()
    {
        var directory = Path.Combine(Path.GetTempPath(), "ck-api-restart-" + Guid.NewGuid().ToString("N")[..8]);
        var bufferPath = Path.Combine(directory, "buffer.db");
        string id;
        string database;
        await using (var first = await ApiTestServer.StartAsync(s => s with { BufferPath = bufferPath }))
        {
            database = first.Database;
            Assert.Equal(200, (await first.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey)).Status);
            first.Proxy.Cut();
            var (status, body, _) = await first.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = "survivor" });
            Assert.Equal(202, status);
            id = body.GetProperty("id").GetString()!;
        }
        Assert.Equal(0, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM tasks WHERE id = $1", id));

        // A new process-worth of server on the same buffer file and a reachable database (of its own).
        var buffer = new ClawKeeper.Host.Api.SubmissionBuffer(bufferPath, 10);
        var kept = Assert.Single(await buffer.OldestAsync(10, CancellationToken.None));
        Assert.Equal(id, kept.Id);
        buffer.Dispose();
        await using var second = await ApiTestServer.StartAsync(s => s with { BufferPath = bufferPath });
        await EventuallyAsync(async () => await Sql.ScalarAsync<long>(second.Database, "SELECT count(*) FROM tasks WHERE id = $1", id) == 1, "the kept task is written");
        Directory.Delete(directory, recursive: true);
    }
}

public class ApiOutageRejectionSpec
{
    [Fact]
    public async Task A_buffered_task_the_database_refuses_for_good_is_set_aside_and_the_others_are_written()
    {
        await using var api = await ApiTestServer.StartAsync();
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey)).Status);
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.GlobexKey)).Status);
        api.Proxy.Cut();
        Assert.Equal(202, (await api.SubmitAsync(ApiTestServer.GlobexKey, new { orchestrator = "cfo", id = "orphan" })).Status);
        Assert.Equal(202, (await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = "fine" })).Status);

        // Meanwhile the tenant globex is removed from the platform: its task can never be written.
        await Sql.ExecuteAsync(api.Database, "DELETE FROM api_keys WHERE tenant_id = 'globex'");
        await Sql.ExecuteAsync(api.Database, "DELETE FROM tenants WHERE id = 'globex'");
        api.Proxy.Restore();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (await api.Server.Buffer.CountAsync(CancellationToken.None) > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the buffer did not drain");
            await Task.Delay(100);
        }
        Assert.Equal(1, await api.Server.Buffer.RejectedCountAsync(CancellationToken.None));
        var written = Assert.Single(await Sql.RowsAsync(api.Database, "SELECT tenant_id FROM tasks"));
        Assert.Equal("acme", written[0]);
    }
}
