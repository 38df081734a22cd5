using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>
/// The real <c>clawkeeper run</c> node as a child process: its health probes are registered in its
/// DI (ClawKeeperNode), its journal is a PostgreSQL database, and its super_admin route is wired.
/// </summary>
public class OpsNodeProcessSpec
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public OpsNodeProcessSpec(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task A_running_node_is_ready_once_its_first_heartbeat_completed_with_every_probe_listed_and_serves_the_unblock_route()
    {
        var platform = await TestDatabases.CreateSeededAsync();
        var journal = await TestDatabases.CreateEmptyAsync();
        await using var providers = await LoopbackHttpServer.StartAsync();
        var config = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-node-config-").FullName, "node.conf");
        await File.WriteAllTextAsync(config, ProviderStandIns.Hocon(providers.BaseAddress) + """

            clawkeeper.heartbeat { interval = 30s, initial-delay = 1s, group-timeout = 20s, retry.interval = 5s }
            """);
        var opsPort = FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Directory.CreateTempSubdirectory("clawkeeper-node-").FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { ClawKeeperProcess.AssemblyPath, "run", "--config", config }) start.ArgumentList.Add(arg);
        start.Environment["CLAWKEEPER_PLATFORM_DB"] = platform;
        start.Environment["CLAWKEEPER_JOURNAL_DB"] = journal;
        start.Environment["CLAWKEEPER_NODE_PORT"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["CLAWKEEPER_OPS_PORT"] = opsPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["CLAWKEEPER_API_PORT"] = "0"; // other nodes of the test run host an API too
        start.Environment["CLAWKEEPER_OPS_TOKEN_SHA256"] = OpsTestHost.TokenSha256;
        start.Environment["CLAWKEEPER_SUPER_ADMIN_TOKEN_SHA256"] = OpsTestHost.SuperAdminTokenSha256;

        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string Output() { lock (output) return output.ToString(); }
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{opsPort}/"), Timeout = TimeSpan.FromSeconds(15) };
        try
        {
            // Ready once the member is up, the journal answers and the first heartbeat completed.
            JsonElement ready = default;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
            var status = HttpStatusCode.ServiceUnavailable;
            while (DateTime.UtcNow < deadline && !process.HasExited)
            {
                try
                {
                    using var response = await http.GetAsync("/health/ready");
                    status = response.StatusCode;
                    ready = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
                    if (status == HttpStatusCode.OK) break;
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
                await Task.Delay(500);
            }
            Assert.True(status == HttpStatusCode.OK, $"ready: {status} {ready}\n{Output()}");
            Assert.Equal(
                new[] { "akka.cluster.join", "cluster_member_up", "journal_reachable", "heartbeat_supervisor_recovered", "heartbeat_recent" },
                ready.GetProperty("conditions").EnumerateArray().Select(c => c.GetProperty("condition").GetString()));
            var journalProbe = ready.GetProperty("conditions").EnumerateArray().Single(c => c.GetProperty("condition").GetString() == "journal_reachable");
            Assert.StartsWith("PostgreSQL journal", journalProbe.GetProperty("detail").GetString());
            Assert.DoesNotContain("journal table not created yet", journalProbe.GetProperty("detail").GetString());

            using (var live = await http.GetAsync("/health/live"))
                Assert.Equal(HttpStatusCode.OK, live.StatusCode);

            // A measurement, not an assertion: what one readiness request costs on this machine.
            var timings = new List<string>();
            for (var i = 0; i < 5; i++)
            {
                var watch = Stopwatch.StartNew();
                using var response = await http.GetAsync("/health/ready");
                var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                timings.Add($"{watch.ElapsedMilliseconds} ms round trip (probes {body.GetProperty("totalDurationMs").GetDouble()} ms: " +
                    string.Join(", ", body.GetProperty("conditions").EnumerateArray().Select(c => $"{c.GetProperty("condition").GetString()} {c.GetProperty("durationMs").GetDouble()}")) + ")");
            }
            foreach (var line in timings) _output.WriteLine("GET /health/ready: " + line);

            // The super_admin route is wired to the node's credential: the ops token is refused, the super_admin one is taken.
            using (var refused = new HttpRequestMessage(HttpMethod.Post, "/writes/unblock") { Content = new StringContent("{\"reason\": \"x\"}", Encoding.UTF8, "application/json") })
            {
                refused.Headers.TryAddWithoutValidation("Authorization", "Bearer " + OpsTestHost.Token);
                using var answer = await http.SendAsync(refused);
                Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
            }
            using (var accepted = new HttpRequestMessage(HttpMethod.Post, "/writes/unblock") { Content = new StringContent("{\"reason\": \"x\"}", Encoding.UTF8, "application/json") })
            {
                accepted.Headers.TryAddWithoutValidation("Authorization", "Bearer " + OpsTestHost.SuperAdminToken);
                using var answer = await http.SendAsync(accepted);
                var text = await answer.Content.ReadAsStringAsync();
                Assert.True(answer.StatusCode == HttpStatusCode.Conflict, text);
                Assert.Contains("nothing_open", text);
            }
            Assert.DoesNotContain(OpsTestHost.SuperAdminToken, Output());
            Assert.DoesNotContain(OpsTestHost.Token, Output());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}
