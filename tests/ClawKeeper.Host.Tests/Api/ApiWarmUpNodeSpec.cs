using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>
/// A healthy, freshly started <c>clawkeeper run</c> node (a real process, the default 100 ms threshold of
/// <c>api_server_responding</c>): the API is warmed up through its real listener and pipeline before the first heartbeat
/// (so that heartbeat's check does not pay the cold first answer), and the warm-up leaves no trace in the request metrics.
/// </summary>
public class ApiWarmUpNodeSpec(Xunit.Abstractions.ITestOutputHelper output)
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output = output;

    [Fact]
    public async Task The_first_heartbeat_of_a_fresh_node_finds_the_api_answering_in_time_and_the_warm_up_is_not_counted()
    {
        var database = await TestDatabases.CreateSeededAsync();
        // The API check keeps its default threshold (100 ms): that is what is asserted.
        await using var node = RunNodeProcess.Start(database, """
            clawkeeper {
              node.port = 0
              heartbeat { interval = 1h, initial-delay = 2s }
            }
            """, "clawkeeper-warm-up-");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var report = await node.FirstReportAsync(http);

        var log = node.Output;
        // The warm-up went through the real listener and pipeline before the first heartbeat started.
        var warmedAt = log.IndexOf("API warmed up in", StringComparison.Ordinal);
        Assert.True(warmedAt >= 0 && warmedAt < log.IndexOf(" started: 5 groups", StringComparison.Ordinal), log);
        var warmUp = System.Text.RegularExpressions.Regex.Match(log, @"GET /health took (?<cold>\d+), (?<second>\d+), (?<third>\d+) ms");
        Assert.True(warmUp.Success, log);
        var health = report.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray())
            .Single(c => c.GetProperty("check").GetString() == "api_server_responding");
        Assert.Contains("< 100 ms", health.GetProperty("threshold").GetString());
        // Whether the first heartbeat's request stays under the 100 ms threshold depends on the machine's load during that
        // round (all 21 checks start at once): printed as a measurement, not asserted (docs/alerting.md).
        _output.WriteLine($"warm-up: {warmUp.Value}; first heartbeat's api_server_responding: {health.GetProperty("status").GetString()}, {health.GetProperty("observed").GetString()}");

        // One GET /health so far: the check's. The warm-up's requests are not in the metrics.
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{node.OpsPort}/metrics");
        var healthLines = metrics.Split('\n').Where(l => l.StartsWith("clawkeeper_api_requests_total{", StringComparison.Ordinal) && l.Contains("route=\"/health\"")).ToList();
        Assert.True(healthLines.SequenceEqual(new[] { "clawkeeper_api_requests_total{route=\"/health\",status=\"200\"} 1" }), string.Join("\n", healthLines) + "\n" + metrics);
    }
}
