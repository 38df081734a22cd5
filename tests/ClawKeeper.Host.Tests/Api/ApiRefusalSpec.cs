using ClawKeeper.Host.Api;
using ClawKeeper.Platform.Api;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>
/// The API refuses cheaply (issue 13, item 4), against a real PostgreSQL: a per-address limit before any key
/// lookup, refusal events throttled to one row per source and reason per window, and its own bounded pool
/// whose exhaustion answers 503 without closing the database gate.
/// </summary>
public class ApiRefusalSpec
{
    [Fact]
    public async Task A_burst_of_random_keys_from_one_address_reaches_the_database_at_most_the_address_limit_times()
    {
        const int limit = 10;
        await using var api = await ApiTestServer.StartAsync(s => s with { AddressPermits = limit, RatePermits = 500, RateWindow = TimeSpan.FromMinutes(5) });
        // A client with a valid key: its first request is counted (the key is unknown until looked up), later ones are not.
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey)).Status);
        Assert.Equal(1, api.Server.Keys.Lookups);

        var statuses = new List<int>();
        for (var i = 0; i < 60; i++)
            statuses.Add((await api.SendAsync(HttpMethod.Get, "api/ping", "ck_random_" + Guid.NewGuid().ToString("N"))).Status);

        // Counted at the store seam: every lookup that went to the database, the valid key's included.
        Assert.Equal(limit, api.Server.Keys.Lookups);
        Assert.Equal(Enumerable.Repeat(401, limit - 1).Concat(Enumerable.Repeat(429, 60 - limit + 1)), statuses);
        var (_, body, response) = await api.SendAsync(HttpMethod.Get, "api/ping", "ck_one_more");
        Assert.Equal("rate_limited", body.GetProperty("error").GetString());
        Assert.InRange(int.Parse(response.Headers.GetValues("Retry-After").Single()), 1, 300);

        // The known client and the heartbeat's probe still get through; /health is never limited.
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey)).Status);
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", api.Server.Authenticator.ProbeKey)).Status);
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "health", null)).Status);

        // The nine refusals are one security event; the 429s are none.
        Assert.Equal(1, await api.FlushedSecurityEventsAsync());
        Assert.Equal(limit - 1, await Sql.ScalarAsync<int>(api.Database, "SELECT (detail->>'count')::int FROM security_events"));
    }

    [Fact]
    public async Task Refusals_are_written_once_per_source_and_reason_per_window_with_their_count()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await using var source = NpgsqlDataSource.Create(database);
        var keys = new ApiKeyStore(source, TimeSpan.FromSeconds(5));
        var now = new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
        await using var throttle = new RefusalEventThrottle((tenant, src, detail, ct) => keys.RecordUnauthorizedAccessAsync(tenant, src, detail, ct),
            TimeSpan.FromMinutes(1), () => now);

        ApiRefusal Refusal(string reason, string remote, int i) =>
            new("system", $"api {remote}", reason, "sha256:" + i.ToString("x12"), null, "GET", "/api/ping", remote, now);
        for (var i = 0; i < 25; i++) throttle.Record(Refusal("the API key is not valid", "10.0.0.7", i));
        for (var i = 0; i < 4; i++) throttle.Record(Refusal("no API key", "10.0.0.7", i));
        throttle.Record(Refusal("the API key is not valid", "10.0.0.8", 99));
        Assert.Equal(30, throttle.PendingRefusals);

        // Within the window nothing is written.
        now = now.AddSeconds(59);
        Assert.Equal(0, await throttle.FlushAsync(all: false, CancellationToken.None));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM security_events"));

        // When it ends: one row per source and reason, each with its count, no secret.
        now = now.AddSeconds(2);
        Assert.Equal(3, await throttle.FlushAsync(all: false, CancellationToken.None));
        var rows = await Sql.RowsAsync(database, """
            SELECT source, detail->>'reason', (detail->>'count')::int, jsonb_array_length(detail->'keys'), kind
            FROM security_events ORDER BY 1, 2
            """);
        Assert.Equal(3, rows.Count);
        Assert.Equal(new object?[] { "api 10.0.0.7", "no API key", 4, 4, "unauthorized_access" }, rows[0]);
        Assert.Equal(new object?[] { "api 10.0.0.7", "the API key is not valid", 25, 5, "unauthorized_access" }, rows[1]);
        Assert.Equal(new object?[] { "api 10.0.0.8", "the API key is not valid", 1, 1, "unauthorized_access" }, rows[2]);
        Assert.Equal(0, throttle.PendingRefusals);
    }

    [Fact]
    public async Task Refusals_that_cannot_be_written_are_kept_and_written_later_with_their_full_count()
    {
        var now = DateTimeOffset.UtcNow;
        var written = new List<(string Source, long Count)>();
        var failing = true;
        await using var throttle = new RefusalEventThrottle((_, source, detail, _) =>
        {
            if (failing) throw new NpgsqlException("database unreachable");
            written.Add((source, Convert.ToInt64(detail["count"])));
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(10), () => now);

        for (var i = 0; i < 3; i++) throttle.Record(new ApiRefusal("system", "api 10.0.0.9", "no API key", null, null, "GET", "/", "10.0.0.9", now));
        now = now.AddSeconds(11);
        Assert.Equal(0, await throttle.FlushAsync(all: false, CancellationToken.None));
        for (var i = 0; i < 2; i++) throttle.Record(new ApiRefusal("system", "api 10.0.0.9", "no API key", null, null, "GET", "/", "10.0.0.9", now));
        failing = false;
        Assert.Equal(1, await throttle.FlushAsync(all: false, CancellationToken.None));
        Assert.Equal([("api 10.0.0.9", 5L)], written);
    }

    [Fact]
    public async Task An_exhausted_api_pool_answers_503_with_Retry_After_and_does_not_close_the_database_gate()
    {
        await using var api = await ApiTestServer.StartAsync(s => s with { MaxPoolSize = 1, PoolTimeout = TimeSpan.FromSeconds(1) });
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey)).Status);

        await using (var held = await api.Platform.OpenConnectionAsync())
        {
            // The key was validated a moment ago: served from the cache; the insert finds no connection.
            var (status, body, response) = await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", kind = "report.close" });
            Assert.Equal(503, status);
            Assert.Equal("database_busy", body.GetProperty("error").GetString());
            Assert.Equal("7", response.Headers.GetValues("Retry-After").Single());

            // A key not validated recently cannot be verified now: 503, never accepted.
            var (unverified, unverifiedBody, _) = await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.GlobexKey);
            Assert.Equal(503, unverified);
            Assert.Equal("database_busy", unverifiedBody.GetProperty("error").GetString());

            var (read, _, _) = await api.SendAsync(HttpMethod.Get, "api/tasks/anything", ApiTestServer.AcmeKey);
            Assert.Equal(503, read);

            // Busy is not an outage: the gate stays open, nothing went to the submission buffer.
            Assert.True(api.Server.Gate.Available, api.Server.Gate.Outage);
            Assert.Equal("reachable", (await api.SendAsync(HttpMethod.Get, "health", null)).Body.GetProperty("database").GetString());
            Assert.Equal(0, await api.Server.Buffer.CountAsync(CancellationToken.None));
        }

        // The connection is back in the pool: the same submission is accepted.
        Assert.Equal(201, (await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", kind = "report.close" })).Status);
        Assert.Equal(1, await api.TasksAsync());
    }
}
