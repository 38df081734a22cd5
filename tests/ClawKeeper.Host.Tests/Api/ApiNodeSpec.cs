using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Platform.Api;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>
/// The real <c>clawkeeper run</c> process: the node hosts the API, the heartbeat's two API checks
/// target it without any URL configured, and their probes leave no security event behind.
/// </summary>
public class ApiNodeSpec
{
    [Fact]
    public async Task A_run_node_hosts_the_api_and_its_heartbeat_checks_it_by_default()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var keys = NpgsqlDataSource.Create(database);
        var key = await ApiKeyIssuer.IssueAsync(keys, "key-node-spec", "system", "node spec", DateTimeOffset.UtcNow.AddDays(30), CancellationToken.None);
        var eventsBefore = await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM security_events");
        await using var node = RunNodeProcess.Start(database, """
            clawkeeper {
              node.port = 0
              heartbeat { interval = 1h, initial-delay = 2s }
              # What is asserted here is the target, not the speed of a busy test machine.
              checks.system-health.api-server.max-response-time = 10s
              checks.system-health.api-server.timeout = 15s
              checks.security-posture.rate-limiter.burst-timeout = 20s
              api.rate-limit.permits = 10
            }
            """, "clawkeeper-node-api-",
            // The report's details are read with the ops read token.
            new Dictionary<string, string> { ["CLAWKEEPER_OPS_READ_TOKEN_SHA256"] = Ops.OpsTestHost.ReadTokenSha256 });
        var apiPort = node.ApiPort;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Ops.OpsTestHost.ReadToken);
        var report = await node.FirstReportAsync(http);

        var checks = report.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray())
            .ToDictionary(c => c.GetProperty("check").GetString()!, c => c);
        var health = checks["api_server_responding"];
        Assert.True(health.GetProperty("status").GetString() == "pass", health.ToString());
        var limiter = checks["rate_limiters_functioning"];
        Assert.True(limiter.GetProperty("status").GetString() == "pass", limiter.ToString());
        Assert.Contains($"http://127.0.0.1:{apiPort}/api/ping", limiter.GetProperty("detail").GetString());
        Assert.StartsWith("11 requests", limiter.GetProperty("observed").GetString());

        // The API answers a client with a real key; the heartbeat's probes recorded nothing.
        using var post = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{apiPort}/api/tasks")
        {
            Content = new StringContent("""{"orchestrator": "support-lead", "kind": "ticket.triage"}""", Encoding.UTF8, "application/json"),
        };
        post.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        var created = await http.SendAsync(post);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(eventsBefore, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM security_events"));

        var metrics = await http.GetStringAsync($"http://127.0.0.1:{node.OpsPort}/metrics");
        Assert.Contains("clawkeeper_api_requests_total{route=\"/api/tasks\",status=\"201\"} 1", metrics);
        // A one-node cluster: this node hosts the heartbeat singleton, so it exports the platform-wide series,
        // and the rounds it ran are in the histograms.
        var samples = ClawKeeper.Host.Tests.Ops.PrometheusSamples.Parse(metrics);
        Assert.Equal(1, samples["clawkeeper_metrics_platform_exporter"]);
        Assert.True(samples["clawkeeper_heartbeat_last_completed_timestamp_seconds"] > 0);
        Assert.True(samples["clawkeeper_heartbeat_duration_seconds_count{kind=\"full\"}"] >= 1);
        Assert.True(samples["clawkeeper_api_request_duration_seconds_count{route=\"/api/tasks\",status_class=\"2xx\"}"] >= 1);
        Assert.DoesNotContain(key, node.Output);
    }
}

public class ApiNodeConfigurationSpec
{
    [Fact]
    public async Task A_taken_api_port_or_a_bad_api_setting_stops_run_with_exit_2_naming_the_key()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var environment = new Dictionary<string, string?>
        {
            ["CLAWKEEPER_PLATFORM_DB"] = "Host=127.0.0.1;Port=1;Database=none;Username=none;Password=secret-not-shown",
            ["CLAWKEEPER_API_PORT"] = port.ToString(),
            ["CLAWKEEPER_OPS_PORT"] = "0",
            ["CLAWKEEPER_NODE_PORT"] = "0",
        };
        var busy = await ClawKeeperProcess.RunAsync(environment, "run");
        Assert.True(busy.ExitCode == 2, busy.ToString());
        Assert.Contains("clawkeeper.api.port: the API server cannot listen on 127.0.0.1:" + port, busy.StandardError);
        Assert.Contains("CLAWKEEPER_API_PORT", busy.StandardError);

        environment["CLAWKEEPER_API_HOSTNAME"] = "api.example.com";
        var bad = await ClawKeeperProcess.RunAsync(environment, "run");
        Assert.True(bad.ExitCode == 2, bad.ToString());
        Assert.Contains("clawkeeper.api.hostname: must be an IP address", bad.StandardError);
        Assert.DoesNotContain("secret-not-shown", bad.StandardError + bad.StandardOutput);
    }
}
