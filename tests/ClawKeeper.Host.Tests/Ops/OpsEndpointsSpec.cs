using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>
/// The ops surface over real HTTP: Akka.Management's server (Akka.Http.Shim over Ceen) on a free
/// port, a stand-in heartbeat supervisor, and a real seeded platform database with heartbeat rows.
/// </summary>
public class OpsEndpointsSpec
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    /// <summary>Four stored heartbeats: three in the last day (two passed, the newest failed) and one three days ago.</summary>
    private static async Task<(string Database, IReadOnlyList<HeartbeatReport> Stored)> DatabaseWithHistoryAsync()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var stored = new List<HeartbeatReport>
        {
            OpsSamples.Report(Now - TimeSpan.FromDays(3), failing: false, durationMs: 900),
            OpsSamples.Report(Now - TimeSpan.FromHours(2), failing: false, durationMs: 1100),
            OpsSamples.Report(Now - TimeSpan.FromHours(1), failing: false, durationMs: 1000),
            OpsSamples.Report(Now - TimeSpan.FromMinutes(1), failing: true, writeBlock: true, consecutiveFailures: 2, durationMs: 1500),
        };
        foreach (var report in stored) await OpsSamples.InsertRunAsync(database, report);
        return (database, stored);
    }

    [Fact]
    public async Task Live_answers_200_while_the_actor_system_runs()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());
        using var response = await host.Http.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("alive", body.RootElement.GetProperty("status").GetString());
        Assert.Equal("ops-spec", body.RootElement.GetProperty("actorSystem").GetString());
    }

    [Fact]
    public async Task Ready_is_503_naming_the_condition_before_any_heartbeat_and_200_once_a_recent_one_completed()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), heartbeatInterval: TimeSpan.FromMinutes(5));

        using (var before = await host.Http.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, before.StatusCode);
            using var body = JsonDocument.Parse(await before.Content.ReadAsStringAsync());
            Assert.False(body.RootElement.GetProperty("ready").GetBoolean());
            Assert.Equal(new[] { "heartbeat_recent" }, body.RootElement.GetProperty("failing").EnumerateArray().Select(e => e.GetString()).ToArray());
            var recent = body.RootElement.GetProperty("conditions").EnumerateArray().Single(c => c.GetProperty("condition").GetString() == "heartbeat_recent");
            Assert.Contains("no heartbeat has completed yet", recent.GetProperty("detail").GetString());
        }

        // A heartbeat that completed 11 minutes ago is older than two 5-minute intervals.
        host.Control.State = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow - TimeSpan.FromMinutes(11), failing: false));
        using (var stale = await host.Http.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, stale.StatusCode);
            Assert.Contains("more than 10m", await stale.Content.ReadAsStringAsync());
        }

        // Ready also when the heartbeat failed: readiness is about the node, not the platform.
        host.Control.State = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(30), failing: true));
        using (var after = await host.Http.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.OK, after.StatusCode);
            using var body = JsonDocument.Parse(await after.Content.ReadAsStringAsync());
            Assert.True(body.RootElement.GetProperty("ready").GetBoolean());
            Assert.Empty(body.RootElement.GetProperty("failing").EnumerateArray());
            Assert.Equal(3, body.RootElement.GetProperty("conditions").GetArrayLength());
        }
    }

    [Fact]
    public async Task A_supervisor_that_does_not_answer_makes_the_node_unready_and_latest_falls_back_to_agent_runs()
    {
        var (database, stored) = await DatabaseWithHistoryAsync();
        await using var host = await OpsTestHost.StartAsync(database, answers: false, askTimeout: TimeSpan.FromMilliseconds(300));

        using (var ready = await host.Http.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            var text = await ready.Content.ReadAsStringAsync();
            Assert.Contains("heartbeat_supervisor_recovered", text);
            Assert.Contains("did not answer within 0.3s", text);
        }

        using var latest = await host.Http.GetAsync("/heartbeat/latest");
        Assert.Equal(HttpStatusCode.OK, latest.StatusCode);
        Assert.Equal("agent_runs", latest.Headers.GetValues("X-ClawKeeper-Source").Single());
        Assert.Equal(stored[^1].ToJson(), await latest.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Latest_is_the_report_json_exactly_and_404_before_the_first_heartbeat()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());
        using (var none = await host.Http.GetAsync("/heartbeat/latest"))
        {
            Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
            Assert.Contains("no heartbeat has completed yet", await none.Content.ReadAsStringAsync());
        }

        var report = OpsSamples.Report(DateTimeOffset.UtcNow, failing: true, writeBlock: true, consecutiveFailures: 2);
        host.Control.State = OpsSamples.StateWith(report);
        using var latest = await host.Http.GetAsync("/heartbeat/latest");
        Assert.Equal(HttpStatusCode.OK, latest.StatusCode);
        Assert.Equal("application/json", latest.Content.Headers.ContentType?.MediaType);
        Assert.Equal("supervisor", latest.Headers.GetValues("X-ClawKeeper-Source").Single());
        Assert.Equal(report.ToJson(), await latest.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task History_returns_the_newest_reports_first_honours_the_limit_and_refuses_a_bad_one()
    {
        var (database, stored) = await DatabaseWithHistoryAsync();
        await using var host = await OpsTestHost.StartAsync(database);

        using (var all = await host.Http.GetAsync("/heartbeat/history"))
        {
            Assert.Equal(HttpStatusCode.OK, all.StatusCode);
            using var body = JsonDocument.Parse(await all.Content.ReadAsStringAsync());
            Assert.Equal(stored.Reverse().Select(r => r.Id), body.RootElement.EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        }

        using (var two = await host.Http.GetAsync("/heartbeat/history?limit=2"))
        {
            Assert.Equal(HttpStatusCode.OK, two.StatusCode);
            using var body = JsonDocument.Parse(await two.Content.ReadAsStringAsync());
            var reports = body.RootElement.EnumerateArray().ToList();
            Assert.Equal(new[] { stored[3].Id, stored[2].Id }, reports.Select(r => r.GetProperty("id").GetString()));
            // The stored report, field for field (jsonb orders keys its own way).
            var newest = reports[0];
            Assert.Equal("fail", newest.GetProperty("status").GetString());
            Assert.Equal(2, newest.GetProperty("consecutiveFailures").GetInt32());
            Assert.True(newest.GetProperty("writeBlock").GetProperty("active").GetBoolean());
            Assert.Contains(newest.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray()),
                c => c.GetProperty("check").GetString() == "error_rate" && c.GetProperty("status").GetString() == "fail");
        }

        foreach (var bad in new[] { "0", "501", "abc", "-3", "2.5", "" })
        {
            using var refused = await host.Http.GetAsync("/heartbeat/history?limit=" + bad);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            using var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            Assert.Contains("limit must be a whole number from 1 to 500", body.RootElement.GetProperty("error").GetString());
        }

        using var most = await host.Http.GetAsync("/heartbeat/history?limit=500");
        Assert.Equal(HttpStatusCode.OK, most.StatusCode);
    }

    [Fact]
    public async Task Members_is_an_empty_list_when_not_clustered_and_unknown_paths_are_404()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());
        using var members = await host.Http.GetAsync("/cluster/members");
        Assert.Equal(HttpStatusCode.OK, members.StatusCode);
        Assert.Equal("[]", await members.Content.ReadAsStringAsync());

        using var unknown = await host.Http.GetAsync("/bootstrap/seed-nodes");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var wrongMethod = await host.Http.GetAsync("/heartbeat/run");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Empty(host.Control.Runs);
    }

    [Fact]
    public async Task Metrics_parse_as_prometheus_text_and_carry_the_protocol_series()
    {
        var (database, stored) = await DatabaseWithHistoryAsync();
        await using var host = await OpsTestHost.StartAsync(database, state: OpsSamples.StateWith(stored[^1]));

        using var response = await host.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        var series = PrometheusSamples.Parse(text);

        // Latest heartbeat, per group and check.
        Assert.Equal(1, series[@"clawkeeper_heartbeat_last_status{status=""fail""}"]);
        Assert.Equal(0, series[@"clawkeeper_heartbeat_last_status{status=""pass""}"]);
        Assert.Equal(1, series[@"clawkeeper_heartbeat_group_status{group=""task_queue"",status=""fail""}"]);
        Assert.Equal(0, series[@"clawkeeper_heartbeat_group_status{group=""task_queue"",status=""pass""}"]);
        Assert.Equal(1, series[@"clawkeeper_heartbeat_group_status{group=""system_health"",status=""pass""}"]);
        Assert.Equal(1, series[@"clawkeeper_heartbeat_check_status{group=""task_queue"",check=""error_rate"",status=""fail""}"]);
        Assert.Equal(1, series[@"clawkeeper_heartbeat_check_status{group=""system_health"",check=""api_server_responding"",status=""pass""}"]);
        Assert.Equal(2, series["clawkeeper_heartbeat_consecutive_failures"]);
        Assert.Equal(1, series["clawkeeper_write_block_active"]);
        Assert.Equal(1, series["clawkeeper_incidents_open"]);
        Assert.Equal(1, series[@"clawkeeper_ops_source_up{source=""supervisor""}"]);
        Assert.Equal(1, series[@"clawkeeper_ops_source_up{source=""platform_db""}"]);

        // Uptime from agent_runs: 2 of 3 in the last day passed, 3 of 4 in the last week.
        Assert.Equal(3, series[@"clawkeeper_uptime_samples{window=""24h""}"]);
        Assert.Equal(2.0 / 3, series[@"clawkeeper_uptime_ratio{window=""24h""}"], 9);
        Assert.Equal(0.75, series[@"clawkeeper_uptime_ratio{window=""7d""}"], 9);
        Assert.Equal(0.75, series[@"clawkeeper_uptime_ratio{window=""30d""}"], 9);
        Assert.Equal(1.0, series[@"clawkeeper_group_uptime_ratio{group=""system_health"",window=""24h""}"], 9);
        Assert.Equal(2.0 / 3, series[@"clawkeeper_group_uptime_ratio{group=""task_queue"",window=""24h""}"], 9);
        Assert.Equal(0.042, series[@"clawkeeper_api_response_time_seconds_avg{window=""7d""}"], 9);

        // Tasks of the last hour, counted as the error_rate check counts them.
        var rows = await Sql.RowsAsync(database, """
            select count(*) filter (where status = 'completed'), count(*) filter (where status = 'failed')
            from tasks where status in ('completed', 'failed', 'cancelled') and completed_at >= now() - interval '1 hour'
            """);
        var completed = Convert.ToDouble(rows[0][0], CultureInfo.InvariantCulture);
        var failed = Convert.ToDouble(rows[0][1], CultureInfo.InvariantCulture);
        Assert.True(completed + failed > 0, "the seeded platform finished tasks in the last hour");
        Assert.Equal(completed, series[@"clawkeeper_tasks_finished{status=""completed"",window=""1h""}"]);
        Assert.Equal(failed, series[@"clawkeeper_tasks_finished{status=""failed"",window=""1h""}"]);
        Assert.Equal(failed / (completed + failed), series[@"clawkeeper_task_error_ratio{window=""1h""}"], 9);
        Assert.Equal(completed / (completed + failed), series[@"clawkeeper_task_completion_ratio{window=""1h""}"], 9);

        // Cost and tokens per tenant as counters (no day label), as the database sums them.
        var perTenant = await Sql.RowsAsync(database, """
            select tenant_id, sum(cost)::float8, sum(tokens_used)::float8, count(*)::float8
            from agent_runs where agent_id <> 'clawkeeper' group by 1
            """);
        Assert.NotEmpty(perTenant);
        foreach (var row in perTenant)
        {
            var labels = $@"{{tenant_id=""{row[0]}""}}";
            Assert.Equal((double)row[1]!, series["clawkeeper_tenant_cost_total" + labels], 6);
            Assert.Equal((double)row[2]!, series["clawkeeper_tenant_tokens_total" + labels]);
            Assert.Equal((double)row[3]!, series["clawkeeper_tenant_agent_runs_total" + labels]);
        }
        Assert.Contains(perTenant, row => (string)row[0]! == "t-acme-bakery" && (double)row[1]! > 0);
        Assert.DoesNotContain(series.Keys, k => k.Contains("day=", StringComparison.Ordinal));
        Assert.Equal(1, series["clawkeeper_platform_all_tenants_visible"]);
        Assert.Equal(1, series["clawkeeper_metrics_platform_exporter"]);

        // The dead-man signal: the latest heartbeat's completion time.
        Assert.Equal(stored[^1].CompletedAt.ToUnixTimeMilliseconds() / 1000.0, series["clawkeeper_heartbeat_last_completed_timestamp_seconds"], 3);

        // prometheus-net's process and runtime collectors; families typed as declared.
        var families = PrometheusExposition.Parse(text);
        Assert.Contains(families.Keys, k => k.StartsWith("process_", StringComparison.Ordinal));
        Assert.Contains(families.Keys, k => k.StartsWith("dotnet_", StringComparison.Ordinal));
        Assert.Equal("counter", families["clawkeeper_tenant_cost_total"].Type);
        Assert.Equal("gauge", families["clawkeeper_uptime_ratio"].Type);
        Assert.Equal("histogram", families["clawkeeper_heartbeat_check_duration_seconds"].Type);
    }

    [Fact]
    public async Task The_status_page_shows_every_check_the_write_block_and_the_figures_without_external_resources()
    {
        var (database, stored) = await DatabaseWithHistoryAsync();
        await using var host = await OpsTestHost.StartAsync(database, state: OpsSamples.StateWith(stored[^1]));

        using var response = await host.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();

        foreach (var check in new[] { "api_server_responding", "database_connection", "queue_depth", "error_rate" })
            Assert.Contains($"<tr data-check=\"{check}\"", html);
        Assert.Contains("<tr data-check=\"error_rate\" data-status=\"fail\">", html);
        Assert.Contains("12.5 % (1/8 failed)", html);
        Assert.Contains("recent failures: task-9 (cfo: &lt;timeout&gt; &amp; retry)", html); // escaped, not markup
        Assert.Contains("id=\"write-block\"", html);
        Assert.Contains("WRITES BLOCKED (write block #7)", html);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(OpsSamples.BlockReason), html);
        Assert.Contains("check:task_queue/error_rate", html); // the open incident
        Assert.Contains("<svg id=\"heartbeat-chart\"", html);
        Assert.Contains("<svg id=\"api-chart\"", html);
        Assert.Contains("id=\"uptime-table\"", html);
        Assert.Contains("66.67 %", html); // 24 h uptime
        Assert.Contains("t-acme-bakery", html);

        // Self-contained: no element loads anything from elsewhere.
        Assert.DoesNotContain(" src=", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("@import", html);
        Assert.DoesNotContain("url(", html);
        Assert.StartsWith("default-src 'none'", response.Headers.GetValues("Content-Security-Policy").Single());

        // Without a block there is no banner.
        host.Control.State = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
        var clean = await host.Http.GetStringAsync("/");
        Assert.DoesNotContain("id=\"write-block\"", clean);
        Assert.DoesNotContain("WRITES BLOCKED", clean);
    }

    [Fact]
    public async Task Run_now_without_or_with_a_wrong_token_is_401_changes_nothing_and_is_logged_without_the_token()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());
        const string guess = "guess-0123456789";

        using (var missing = await host.PostAsync("/heartbeat/run", bearer: null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
            Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);
            Assert.Contains("no Authorization header", await missing.Content.ReadAsStringAsync());
        }
        using (var wrong = await host.PostAsync("/heartbeat/run", bearer: guess))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            var body = await wrong.Content.ReadAsStringAsync();
            Assert.Contains("not valid", body);
            Assert.DoesNotContain(guess, body);
        }
        using (var leave = await host.PostAsync("/cluster/leave", bearer: guess))
            Assert.Equal(HttpStatusCode.Unauthorized, leave.StatusCode);

        Assert.True(await OpsTestHost.EventuallyAsync(() => host.Warnings.Count(w => w.Contains("ops: refused POST")) >= 3),
            "each refused attempt is logged: " + string.Join(" | ", host.Warnings));
        Assert.Contains(host.Warnings, w => w.Contains("ops: refused POST /heartbeat/run") && w.Contains("no Authorization header"));
        Assert.Contains(host.Warnings, w => w.Contains("ops: refused POST /heartbeat/run") && w.Contains("the bearer token is not valid"));
        Assert.Contains(host.Warnings, w => w.Contains("ops: refused POST /cluster/leave"));
        Assert.DoesNotContain(host.Warnings, w => w.Contains(guess));

        await Task.Delay(200);
        Assert.Empty(host.Control.Runs);
    }

    [Fact]
    public async Task Run_now_with_the_token_is_202_and_the_supervisor_is_told_once()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());

        using var accepted = await host.PostAsync("/heartbeat/run", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        using var body = JsonDocument.Parse(await accepted.Content.ReadAsStringAsync());
        Assert.Equal("heartbeat_run", body.RootElement.GetProperty("accepted").GetString());

        Assert.True(await OpsTestHost.EventuallyAsync(() => host.Control.Runs.Count == 1));
        await Task.Delay(200);
        var run = Assert.Single(host.Control.Runs);
        Assert.False(run.FullVerification);

        using var full = await host.PostAsync("/heartbeat/run?full=true", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.Accepted, full.StatusCode);
        Assert.True(await OpsTestHost.EventuallyAsync(() => host.Control.Runs.Count == 2));
        Assert.True(host.Control.Runs.Last().FullVerification);

        // Leaving is refused on a node that is not a cluster member (and with the token it is not a 401).
        using var leave = await host.PostAsync("/cluster/leave", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.Conflict, leave.StatusCode);
        Assert.False(host.System.WhenTerminated.IsCompleted);
    }

    [Fact]
    public async Task Without_a_configured_token_every_mutating_route_is_refused()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), tokenSha256: "");
        using var refused = await host.PostAsync("/heartbeat/run", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("no ops token is configured", await refused.Content.ReadAsStringAsync());
        await Task.Delay(200);
        Assert.Empty(host.Control.Runs);
    }

    /// <summary>Every POST route of the ops surface, with arguments it would accept.</summary>
    public static IEnumerable<object[]> MutatingRoutes() =>
    [
        ["/heartbeat/run"],
        ["/cluster/leave"],
        ["/cluster/down?address=akka.tcp%3A%2F%2Fops-spec%40127.0.0.1%3A4053"],
        ["/alerts/ack?incident=check%3Atask_queue%2Ferror_rate&reason=known"],
        ["/alerts/silence?target=task_queue&for=600&reason=maintenance"],
        ["/writes/unblock"],
    ];

    [Theory]
    [MemberData(nameof(MutatingRoutes))]
    public async Task Every_mutating_route_without_a_valid_token_is_401_changes_nothing_and_is_logged_without_the_token(string route)
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "select impose_write_block('financial_totals_balance: test imbalance', 'clawkeeper-heartbeat')");
        await using var host = await OpsTestHost.StartAsync(database);
        const string guess = "guess-0123456789";
        var path = route.Split('?')[0];

        foreach (var bearer in new[] { null, guess })
        {
            using var refused = await host.PostAsync(route, bearer, "{\"reason\": \"guess\", \"force\": true}");
            var body = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.Unauthorized, body);
            Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);
            Assert.DoesNotContain(guess, body);
        }

        Assert.True(await OpsTestHost.EventuallyAsync(() => host.Warnings.Count(w => w.Contains($"ops: refused POST {path} ")) >= 2),
            "each refused attempt is logged: " + string.Join(" | ", host.Warnings));
        Assert.DoesNotContain(host.Warnings, w => w.Contains(guess));
        await Task.Delay(200);
        Assert.Empty(host.Control.Runs);
        Assert.Equal(0, Volatile.Read(ref host.Control.Reconciles));
        Assert.False(host.System.WhenTerminated.IsCompleted);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from alert_controls"));
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is null"));
    }
}

/// <summary>Parses Prometheus text exposition: every sample line must be <c>name{labels} value</c>.</summary>
public static class PrometheusSamples
{
    /// <summary>Every sample by key, after <see cref="PrometheusExposition.Parse"/> checked the whole exposition.</summary>
    public static IReadOnlyDictionary<string, double> Parse(string text) => PrometheusExposition.Samples(PrometheusExposition.Parse(text));
}
