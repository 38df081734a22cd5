using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using ClawKeeper.Host.Ops;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>Who reads what on the ops GET routes: redacted by default, details with the read token, health and metrics open.</summary>
public class OpsReadAccessSpec
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public OpsReadAccessSpec(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    /// <summary>Texts of the seeded failure that must not reach an anonymous reader: tenant id, task id, error text.</summary>
    private static readonly string[] Secrets = ["t-acme-bakery", "task-9", "<timeout>", "&lt;timeout&gt;", "timeout\\u003E", "assets 1200.00"];

    /// <summary>A failing heartbeat with a write block (tenant id in its reason, task id and error text in a check's detail), live and stored.</summary>
    private static async Task<(string Database, ClawKeeper.Actors.Heartbeat.HeartbeatState State)> SeededFailureAsync()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var report = OpsSamples.Report(DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1), failing: true, writeBlock: true, consecutiveFailures: 2);
        await OpsSamples.InsertRunAsync(database, report);
        return (database, OpsSamples.StateWith(report));
    }

    private static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> GetAsync(OpsTestHost host, string path, AuthenticationHeaderValue? auth = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = auth;
        var response = await host.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    [Fact]
    public async Task Without_a_read_token_the_heartbeat_routes_and_the_page_show_counts_and_states_but_no_tenant_task_or_error_text()
    {
        var (database, state) = await SeededFailureAsync();
        await using var host = await OpsTestHost.StartAsync(database, state, exposeTenantDetails: false);

        foreach (var path in new[] { "/heartbeat/latest", "/heartbeat/history", "/" })
        {
            var (status, body, response) = await GetAsync(host, path);
            response.Dispose();
            Assert.True(status == HttpStatusCode.OK, $"{path}: {status} {body}");
            foreach (var secret in Secrets)
            {
                var at = body.IndexOf(secret, StringComparison.OrdinalIgnoreCase);
                Assert.True(at < 0, $"{path} shows '{secret}': ...{(at < 0 ? "" : body.Substring(Math.Max(0, at - 150), Math.Min(300, body.Length - Math.Max(0, at - 150))))}...");
            }
            Assert.Contains("error_rate", body);          // the check and its state stay
            Assert.Contains(OpsRedaction.Hidden.Split(':')[0], body);
        }
        var (_, latest, r1) = await GetAsync(host, "/heartbeat/latest");
        r1.Dispose();
        Assert.Contains("\"status\":\"fail\"", latest);
        Assert.Contains("\"consecutiveFailures\":2", latest);
        var (_, page, r2) = await GetAsync(host, "/");
        r2.Dispose();
        Assert.Contains("<tr data-check=\"error_rate\" data-status=\"fail\">", page);
        Assert.Contains("WRITES BLOCKED (write block #7)", page);

        // Health and metrics stay open (no token needed, documented).
        var (live, _, r3) = await GetAsync(host, "/health/live");
        r3.Dispose();
        Assert.Equal(HttpStatusCode.OK, live);
        var (metrics, _, r4) = await GetAsync(host, "/metrics");
        r4.Dispose();
        Assert.Equal(HttpStatusCode.OK, metrics);
    }

    [Fact]
    public async Task With_expose_tenant_details_on_the_details_are_shown_to_everyone()
    {
        var (database, state) = await SeededFailureAsync();
        await using var host = await OpsTestHost.StartAsync(database, state, exposeTenantDetails: true);
        var (_, latest, response) = await GetAsync(host, "/heartbeat/latest");
        response.Dispose();
        Assert.Contains("task-9", latest);
        Assert.Contains("t-acme-bakery", latest);
    }

    [Fact]
    public async Task With_a_read_token_the_GET_routes_need_it_and_show_details_while_health_and_metrics_stay_open()
    {
        var (database, state) = await SeededFailureAsync();
        await using var host = await OpsTestHost.StartAsync(database, state, exposeTenantDetails: false, readTokenSha256: OpsTestHost.ReadTokenSha256);
        const string guess = "read-guess-42";

        foreach (var path in new[] { "/heartbeat/latest", "/heartbeat/history", "/", "/cluster/members" })
        {
            foreach (var auth in new AuthenticationHeaderValue?[] { null, new("Bearer", guess), new("Bearer", OpsTestHost.Token) })
            {
                var (status, body, response) = await GetAsync(host, path, auth);
                Assert.True(status == HttpStatusCode.Unauthorized, $"{path} with {auth?.Parameter ?? "nothing"}: {status}");
                Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Basic");
                Assert.DoesNotContain(guess, body);
                foreach (var secret in Secrets) Assert.DoesNotContain(secret, body, StringComparison.OrdinalIgnoreCase);
                response.Dispose();
            }
        }
        Assert.DoesNotContain(host.Warnings, w => w.Contains(guess));

        var (ok, latest, r1) = await GetAsync(host, "/heartbeat/latest", new AuthenticationHeaderValue("Bearer", OpsTestHost.ReadToken));
        r1.Dispose();
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.Contains("task-9", latest);
        Assert.Contains("t-acme-bakery", latest);

        // What a browser sends after its prompt: Basic with the token as password.
        var basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ops:" + OpsTestHost.ReadToken)));
        var (pageStatus, page, r2) = await GetAsync(host, "/", basic);
        r2.Dispose();
        Assert.Equal(HttpStatusCode.OK, pageStatus);
        Assert.Contains("t-acme-bakery", page);

        var (owner, _, r3) = await GetAsync(host, "/heartbeat/history", new AuthenticationHeaderValue("Bearer", OpsTestHost.SuperAdminToken));
        r3.Dispose();
        Assert.Equal(HttpStatusCode.OK, owner);

        foreach (var open in new[] { "/health/live", "/metrics" })
        {
            var (status, _, response) = await GetAsync(host, open);
            response.Dispose();
            Assert.Equal(HttpStatusCode.OK, status);
        }
    }

    [Fact]
    public async Task The_health_cache_reuses_a_report_within_its_window_and_concurrent_requests_share_one_run()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var host = await OpsTestHost.StartAsync(database);
        var now = DateTimeOffset.UtcNow;
        var cache = new OpsHealthCache(host.System, TimeSpan.FromSeconds(2), () => now);
        Func<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration, bool> ready = r => r.Tags.Contains(OpsHealthChecks.ReadinessTag);

        // Before any heartbeat: unhealthy; a heartbeat then completes, but within the window the report is reused.
        var before = await cache.CheckHealthAsync(ready);
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, before.Status);
        host.Control.State = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
        var reused = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => cache.CheckHealthAsync(ready)));
        Assert.All(reused, r => Assert.Same(before, r));
        Assert.Equal(1, cache.Runs);

        // After the window: one new run for all the requests that arrive together.
        now += TimeSpan.FromSeconds(2);
        var fresh = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => cache.CheckHealthAsync(ready)));
        Assert.Equal(2, cache.Runs);
        Assert.All(fresh, r => Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy, r.Status));

        // Zero: no cache.
        var none = new OpsHealthCache(host.System, TimeSpan.Zero, () => now);
        await none.CheckHealthAsync(ready);
        await none.CheckHealthAsync(ready);
        Assert.Equal(2, none.Runs);
    }

    [Fact]
    public async Task A_burst_of_readiness_and_page_requests_runs_the_probes_about_once_per_window()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var state = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
        await using var host = await OpsTestHost.StartAsync(database, state, healthCache: TimeSpan.FromSeconds(1));
        var cache = host.System.Settings.Setup.Get<OpsSetup>().Value.Health!;
        var runsBefore = cache.Runs;

        var watch = Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => host.Http.GetAsync(i % 5 == 0 ? "/" : "/health/ready")));
        watch.Stop();
        foreach (var answer in answers) answer.Dispose();
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        var runs = cache.Runs - runsBefore;
        _output.WriteLine($"100 requests (80 /health/ready, 20 /) in {watch.ElapsedMilliseconds} ms ran the readiness probes {runs} time(s) (window 1 s)");
        // At most one run per started window (plus the one in flight when a window ends).
        Assert.InRange(runs, 1, (long)Math.Floor(watch.Elapsed.TotalSeconds) + 2);
    }
}
