using System.Net;
using System.Text.Json;
using ClawKeeper.Platform.Tasks;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>The API server over real HTTP on loopback against a real PostgreSQL.</summary>
public class ApiServerSpec
{
    [Fact]
    public async Task Health_answers_without_a_key_and_records_nothing()
    {
        await using var api = await ApiTestServer.StartAsync();
        var (status, body, _) = await api.SendAsync(HttpMethod.Get, "health", key: null);
        Assert.Equal(200, status);
        Assert.Equal("ok", body.GetProperty("status").GetString());
        Assert.Equal("reachable", body.GetProperty("database").GetString());
        Assert.Equal(0, await api.FlushedSecurityEventsAsync());
    }

    [Theory]
    [InlineData(null, "system", "no API key")]
    [InlineData("ck_unknown_key_never_issued_42", "system", "not valid")]
    [InlineData(ApiTestServer.AcmeRevokedKey, "acme", "revoked")]
    [InlineData(ApiTestServer.AcmeExpiredKey, "acme", "expired")]
    public async Task A_missing_unknown_revoked_or_expired_key_gets_401_and_one_security_event_with_its_count(string? key, string tenant, string reason)
    {
        await using var api = await ApiTestServer.StartAsync();
        var (status, body, response) = await api.SubmitAsync(key!, new { orchestrator = "cfo" });
        Assert.Equal(401, status);
        Assert.Equal("unauthorized", body.GetProperty("error").GetString());
        Assert.Contains(reason, body.GetProperty("reason").GetString());
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);

        Assert.Equal(1, api.Server.RefusalEvents.PendingRefusals);
        await api.Server.RefusalEvents.FlushAsync(all: true, CancellationToken.None);
        var rows = await Sql.RowsAsync(api.Database, "SELECT tenant_id, kind, source, detail::text, (detail->>'count')::int FROM security_events");
        var row = Assert.Single(rows);
        Assert.Equal(1, row[4]);
        Assert.Equal(tenant, row[0]);
        Assert.Equal("unauthorized_access", row[1]);
        Assert.StartsWith("api 127.0.0.1", (string)row[2]!);
        var detail = (string)row[3]!;
        Assert.Contains("/api/tasks", detail);
        if (key is not null)
        {
            Assert.DoesNotContain(key, detail); // never the secret
            Assert.Contains("sha256:", detail);
        }
        Assert.Equal(0, await api.TasksAsync());
    }

    [Fact]
    public async Task A_submitted_task_is_created_claimable_by_the_fleet_readable_and_idempotent()
    {
        await using var api = await ApiTestServer.StartAsync();
        var (status, body, response) = await api.SubmitAsync(ApiTestServer.AcmeKey,
            new { orchestrator = "accounts-payable-lead", kind = "invoice.match", payload = new { invoice = "INV-7" }, priority = 5, id = "client-1" });
        Assert.Equal(201, status);
        var id = body.GetProperty("id").GetString()!;
        Assert.Equal("pending", body.GetProperty("status").GetString());
        Assert.Equal($"/api/tasks/{id}", response.Headers.Location!.ToString());

        var row = Assert.Single(await Sql.RowsAsync(api.Database, "SELECT tenant_id, orchestrator, kind, payload->>'invoice', priority FROM tasks WHERE id = $1", id));
        Assert.Equal(new object?[] { "acme", "accounts-payable-lead", "invoice.match", "INV-7", 5 }, row);

        // The same idempotency key again: the same task, nothing new.
        var (again, againBody, _) = await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "accounts-payable-lead", id = "client-1" });
        Assert.Equal(200, again);
        Assert.Equal(id, againBody.GetProperty("id").GetString());
        Assert.Equal(1, await api.TasksAsync());

        // The fleet's claim picks it up.
        var queue = new PostgresTaskQueue(api.Platform);
        var claimed = Assert.Single(await queue.ClaimAsync("accounts-payable-lead", "node-1/accounts-payable-lead", 10));
        Assert.Equal(id, claimed.Id);

        var (read, task, _) = await api.SendAsync(HttpMethod.Get, $"api/tasks/{id}", ApiTestServer.AcmeKey);
        Assert.Equal(200, read);
        Assert.Equal("assigned", task.GetProperty("status").GetString());
        Assert.Equal(1, task.GetProperty("attempts").GetInt32());
        Assert.Equal(JsonValueKind.Null, task.GetProperty("lastError").ValueKind);
        Assert.Equal(0, await api.FlushedSecurityEventsAsync());
    }

    [Theory]
    [InlineData("{\"orchestrator\": \"chief-vibes-officer\"}", "unknown orchestrator 'chief-vibes-officer'")]
    [InlineData("{\"kind\": \"x\"}", "'orchestrator' is required")]
    [InlineData("{\"orchestrator\": \"cfo\", \"payload\": [1]}", "'payload' must be a JSON object")]
    [InlineData("{\"orchestrator\": \"cfo\", \"priority\": 5000}", "'priority' must be a whole number")]
    [InlineData("{\"orchestrator\": \"cfo\", \"colour\": \"red\"}", "unknown field(s) 'colour'")]
    [InlineData("not json", "not valid JSON")]
    public async Task An_invalid_body_gets_400_that_explains_itself(string body, string expected)
    {
        await using var api = await ApiTestServer.StartAsync();
        var (status, json, _) = await api.SubmitAsync(ApiTestServer.AcmeKey, body);
        Assert.Equal(400, status);
        Assert.Contains(expected, json.GetProperty("reason").GetString());
        Assert.Equal(0, await api.TasksAsync());
    }

    [Fact]
    public async Task Another_tenants_task_is_404_because_row_level_security_hides_it()
    {
        await using var api = await ApiTestServer.StartAsync();
        var (_, created, _) = await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo" });
        var id = created.GetProperty("id").GetString()!;

        var (status, body, _) = await api.SendAsync(HttpMethod.Get, $"api/tasks/{id}", ApiTestServer.GlobexKey);
        Assert.Equal(404, status);
        Assert.Equal("not_found", body.GetProperty("error").GetString());
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, $"api/tasks/{id}", ApiTestServer.AcmeKey)).Status);

        // The request's SQL has no tenant predicate: with the policy switched off the same request
        // sees the row, so the 404 above came from row-level security.
        await Sql.ExecuteAsync(api.Database, "ALTER TABLE tasks DISABLE ROW LEVEL SECURITY");
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, $"api/tasks/{id}", ApiTestServer.GlobexKey)).Status);
    }

    [Fact]
    public async Task Past_the_limit_a_key_gets_429_with_Retry_After_and_other_keys_and_health_are_unaffected()
    {
        await using var api = await ApiTestServer.StartAsync(s => s with { RatePermits = 3, RateWindow = TimeSpan.FromMinutes(1) });
        for (var i = 0; i < 3; i++)
            Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey)).Status);
        var (status, body, response) = await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey);
        Assert.Equal(429, status);
        Assert.Equal("rate_limited", body.GetProperty("error").GetString());
        var retryAfter = int.Parse(response.Headers.GetValues("Retry-After").Single());
        Assert.InRange(retryAfter, 1, 60);

        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.GlobexKey)).Status);
        for (var i = 0; i < 10; i++)
            Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "health", null)).Status);
    }

    [Fact]
    public async Task A_flood_of_refused_requests_is_limited_by_remote_address()
    {
        await using var api = await ApiTestServer.StartAsync(s => s with { RatePermits = 4 });
        var statuses = new List<int>();
        for (var i = 0; i < 8; i++)
            statuses.Add((await api.SendAsync(HttpMethod.Get, "api/ping", "ck_flood_" + i)).Status);
        Assert.Equal(new[] { 401, 401, 401, 401, 429, 429, 429, 429 }, statuses);
        // One row for the source and reason, counting the four refusals.
        Assert.Equal(1, await api.FlushedSecurityEventsAsync());
        Assert.Equal(4, await Sql.ScalarAsync<int>(api.Database, "SELECT (detail->>'count')::int FROM security_events"));
    }

    [Fact]
    public async Task The_probe_key_may_only_ping()
    {
        await using var api = await ApiTestServer.StartAsync();
        var probe = api.Server.CurrentRateLimitProbe()!;
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", probe.BearerToken)).Status);
        Assert.Equal(403, (await api.SubmitAsync(probe.BearerToken, new { orchestrator = "cfo" })).Status);
        Assert.DoesNotContain(probe.BearerToken, probe.ToString());
        Assert.Equal(0, await api.TasksAsync());
        Assert.Equal(0, await api.FlushedSecurityEventsAsync());
    }

    [Fact]
    public async Task A_stopped_listener_is_restarted_on_the_same_port()
    {
        await using var api = await ApiTestServer.StartAsync();
        var url = api.Server.BaseUrl!;
        await api.Server.StopListenerAsync();
        Assert.Null(api.Server.BaseUrl);
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri(url, "health")));

        var result = await api.Server.RestartAsync(CancellationToken.None);
        Assert.True(result.Listening, result.Detail);
        Assert.Equal(url, api.Server.BaseUrl);
        Assert.Contains("was not listening", result.Detail);
        Assert.Contains("GET /health answered 200", result.Detail);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(url, "health"))).StatusCode);

        // A restart of a running listener works too.
        var again = await api.Server.RestartAsync(CancellationToken.None);
        Assert.True(again.Listening, again.Detail);
        Assert.Equal(url, api.Server.BaseUrl);
    }

    [Fact]
    public async Task Requests_are_measured_by_route_and_status()
    {
        await using var api = await ApiTestServer.StartAsync();
        await api.SendAsync(HttpMethod.Get, "health", null);
        await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey);
        await api.SendAsync(HttpMethod.Get, "api/ping", null);
        using var buffer = new MemoryStream();
        await api.Server.Metrics.Node.ExportAsync(buffer, CancellationToken.None);
        var samples = ClawKeeper.Host.Tests.Ops.PrometheusSamples.Parse(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        Assert.Equal(1, samples["clawkeeper_api_requests_total{route=\"/health\",status=\"200\"}"]);
        Assert.Equal(1, samples["clawkeeper_api_requests_total{route=\"/api/ping\",status=\"200\"}"]);
        Assert.Equal(1, samples["clawkeeper_api_requests_total{route=\"/api/ping\",status=\"401\"}"]);
        Assert.Equal(1, samples["clawkeeper_api_request_duration_seconds_count{route=\"/api/ping\",status_class=\"4xx\"}"]);
        Assert.Equal(2, samples["clawkeeper_api_request_duration_seconds_count{route=\"/health\",status_class=\"2xx\"}"] + samples["clawkeeper_api_request_duration_seconds_count{route=\"/api/ping\",status_class=\"2xx\"}"]);
        Assert.True(samples["clawkeeper_api_request_duration_seconds_sum{route=\"/api/ping\",status_class=\"2xx\"}"] > 0);
    }
}
