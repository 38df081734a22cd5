using System.Collections;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Api;
using ClawKeeper.Host.Configuration;
using ClawKeeper.Host.Node;
using ClawKeeper.Host.Ops;
using ClawKeeper.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Host.Tests.Repairs;

/// <summary>
/// Issue 5, item 4: "Stop the API listener: the heartbeat restarts it and alerts admin" — on a real node
/// (<see cref="ClawKeeperNode.Build"/> as <c>run</c> builds it: cluster, singleton heartbeat, hosted API, ops
/// routes, SQLite journal), a seeded PostgreSQL platform database and a real SMTP server on loopback.
/// Built in-process so the test can take the listener down through the host's <see cref="ApiServer"/>.
/// </summary>
public class ApiServerRepairNodeSpec(ITestOutputHelper output)
{
    private const string OpsToken = "ops-token-e2e-repair";
    private const string AdminAddress = "admin@clawkeeper.test";
    private const string ApiCheck = "api_server_responding";
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task A_stopped_api_listener_is_restarted_by_the_heartbeat_and_admin_is_told_then_told_it_resolved()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        var directory = Directory.CreateTempSubdirectory("clawkeeper-api-repair-").FullName;
        var configFile = Path.Combine(directory, "node.conf");
        var tokenSha256 = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(OpsToken)));
        await File.WriteAllTextAsync(configFile, $$"""
            clawkeeper {
              platform-db.connection-string = {{ConfigurationLoader.Quote(database)}}
              journal.sqlite-path = {{ConfigurationLoader.Quote(Path.Combine(directory, "journal.db"))}}
              node.port = 0
              # Only the test starts heartbeats (POST /heartbeat/run); the retry round of a soft failure is the node's own.
              heartbeat {
                interval = 1h
                initial-delay = 1h
                retry { interval = 2s, max-attempts = 3 }
              }
              api {
                port = 0
                submission-buffer.path = {{ConfigurationLoader.Quote(Path.Combine(directory, "api-submissions.db"))}}
              }
              # The report's details (observed values, action details) are read with the ops read token.
              ops { port = 0, token-sha256 = "{{tokenSha256}}", read-token-sha256 = "{{Ops.OpsTestHost.ReadTokenSha256}}" }
              # What is asserted is the repair, not the speed of a busy test machine.
              checks.system-health.api-server { max-response-time = 10s, timeout = 5s }
              checks.security-posture.rate-limiter.burst-timeout = 20s
              alerts {
                retry { min-backoff = 200ms, max-backoff = 2s }
                smtp { host = "127.0.0.1", port = {{smtp.Port}}, tls = none }
                audiences.admin.email = ["{{AdminAddress}}"]
              }
            }
            """);

        // As `run` reads it, but without this process's environment (CLAWKEEPER_* of the test runner stay out).
        var config = ConfigurationLoader.Load(Array.Empty<string>(), new FileInfo(configFile), new Hashtable());
        var settings = ClawKeeperSettings.FromConfig(config);
        using var host = ClawKeeperNode.Build(config, settings, NodeMode.ClusterNode);
        await host.StartAsync();
        try
        {
            var api = host.Services.GetRequiredService<ApiServer>();
            var system = host.Services.GetRequiredService<ActorSystem>();
            var ops = system.OpsBaseUri() ?? throw new InvalidOperationException("the node serves no ops routes");
            var apiUrl = api.BaseUrl ?? throw new InvalidOperationException("the API server is not listening");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Ops.OpsTestHost.ReadToken);
            output.WriteLine($"api {apiUrl}, ops {ops}, smtp 127.0.0.1:{smtp.Port}");

            // Baseline: the API answers and a heartbeat passes its check.
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(apiUrl, "health"))).StatusCode);
            var baseline = await RunHeartbeatAsync(http, ops, previousId: null);
            Assert.True(Check(baseline, ApiCheck).GetProperty("status").GetString() == "pass", Check(baseline, ApiCheck).ToString());
            Assert.Empty(smtp.Received);

            // The listener goes down: nothing answers on its port any more.
            await api.StopListenerAsync();
            Assert.Null(api.BaseUrl);
            await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(new Uri(apiUrl, "health")));

            var watch = Stopwatch.StartNew();
            var repaired = await RunHeartbeatAsync(http, ops, baseline.GetProperty("id").GetString());
            output.WriteLine($"heartbeat with the repair: {watch.ElapsedMilliseconds} ms after the run was asked");
            var failed = Check(repaired, ApiCheck);
            Assert.True(failed.GetProperty("status").GetString() is "fail" or "error", failed.ToString());
            Assert.Equal("soft", failed.GetProperty("state").GetString());
            Assert.Equal("1/3", failed.GetProperty("attempt").GetString());

            var restart = repaired.GetProperty("actions").EnumerateArray().Single(a => a.GetProperty("action").GetString() == "restart_api_server");
            output.WriteLine(restart.ToString());
            Assert.StartsWith("restarted", restart.GetProperty("outcome").GetString());
            Assert.Matches(@"^GET /health answered 200 in \d+ ms$", restart.GetProperty("recheck").GetString());
            var alert = repaired.GetProperty("alerts").EnumerateArray().Single(a => a.GetProperty("audience").GetString() == "admin");
            Assert.Equal("check:system_health/api_server_responding:admin", alert.GetProperty("dedupKey").GetString());
            Assert.Equal("warning", alert.GetProperty("severity").GetString());

            // The same port answers again.
            Assert.Equal(apiUrl, api.BaseUrl);
            var health = await http.GetAsync(new Uri(apiUrl, "health"));
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);

            // Admin's e-mail names the restart.
            var firing = await WaitForMailAsync(smtp, 1);
            var firingMail = firing[0];
            output.WriteLine($"firing after {watch.ElapsedMilliseconds} ms: {firingMail.Message.Subject}\n{firingMail.Message.TextBody}");
            Assert.Equal(new[] { AdminAddress }, firingMail.EnvelopeTo);
            Assert.Contains("WARNING: the heartbeat restarted the API server, /health answers again", firingMail.Message.Subject);
            Assert.Contains("it had failed: fail: not listening", firingMail.Message.TextBody);
            Assert.Contains("re-check: GET /health answered 200", firingMail.Message.TextBody);

            // The next heartbeat (the node's own retry round of the soft check) passes it and resolves admin's incident.
            var recovered = await WaitForReportAsync(http, ops, r =>
                r.GetProperty("id").GetString() != repaired.GetProperty("id").GetString()
                && Check(r, ApiCheck).GetProperty("status").GetString() == "pass");
            output.WriteLine($"recovered after {watch.ElapsedMilliseconds} ms: {recovered.GetProperty("id").GetString()} (retry: {recovered.TryGetProperty("retry", out var retry) && retry.GetBoolean()})");
            Assert.DoesNotContain(recovered.GetProperty("actions").EnumerateArray(), a => a.GetProperty("action").GetString() == "restart_api_server");
            var incidents = recovered.TryGetProperty("incidents", out var open) ? open.EnumerateArray().Select(i => i.GetProperty("dedupKey").GetString()).ToList() : new List<string?>();
            Assert.DoesNotContain("check:system_health/api_server_responding:admin", incidents);

            var both = await WaitForMailAsync(smtp, 2);
            var resolved = both[1];
            output.WriteLine($"resolved after {watch.ElapsedMilliseconds} ms: {resolved.Message.Subject}\n{resolved.Message.TextBody}");
            Assert.Equal(new[] { AdminAddress }, resolved.EnvelopeTo);
            Assert.Contains("RESOLVED", resolved.Message.Subject, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("api_server_responding", resolved.Message.TextBody);
            Assert.Contains("resolved", resolved.Message.TextBody);

            // Exactly these two: no second "restarted" e-mail, no reminder.
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.Equal(2, smtp.Received.Count);
        }
        finally
        {
            await host.StopAsync(TimeSpan.FromSeconds(30));
        }
    }

    private static JsonElement Check(JsonElement report, string check) =>
        report.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray())
            .Single(c => c.GetProperty("check").GetString() == check);

    /// <summary>Asks for a heartbeat (ops token) and waits for a report other than <paramref name="previousId"/>.</summary>
    private static async Task<JsonElement> RunHeartbeatAsync(HttpClient http, Uri ops, string? previousId)
    {
        using var run = new HttpRequestMessage(HttpMethod.Post, new Uri(ops, "heartbeat/run"));
        run.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OpsToken);
        var accepted = await http.SendAsync(run);
        Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, await accepted.Content.ReadAsStringAsync());
        return await WaitForReportAsync(http, ops, r => r.GetProperty("id").GetString() != previousId && !(r.TryGetProperty("retry", out var retry) && retry.GetBoolean()));
    }

    private static async Task<JsonElement> WaitForReportAsync(HttpClient http, Uri ops, Func<JsonElement, bool> wanted)
    {
        var deadline = DateTime.UtcNow + Patience;
        var last = "(none)";
        while (DateTime.UtcNow < deadline)
        {
            var response = await http.GetAsync(new Uri(ops, "heartbeat/latest"));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                last = await response.Content.ReadAsStringAsync();
                var report = JsonDocument.Parse(last).RootElement.Clone();
                if (wanted(report)) return report;
            }
            await Task.Delay(250);
        }
        throw new Xunit.Sdk.XunitException($"no such heartbeat report within {Patience}; the latest: {last}");
    }

    private static async Task<IReadOnlyList<ReceivedMail>> WaitForMailAsync(LoopbackSmtpServer smtp, int count)
    {
        var received = await smtp.WaitForAsync(count, Patience);
        Assert.True(received.Count >= count, $"{received.Count} e-mails arrived, expected {count}: {string.Join(" | ", received.Select(m => m.Message.Subject))}");
        return received;
    }
}
