using System.Diagnostics;
using ClawKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>
/// Printed measurements, not timed tests: they assert only correctness (every task written once)
/// and write the numbers to the test output (<c>dotnet test --logger "console;verbosity=detailed"</c>).
/// </summary>
public sealed class ApiMeasurements(ITestOutputHelper output)
{
    private static string Describe(List<double> ms)
    {
        ms.Sort();
        double P(double q) => ms[(int)Math.Min(ms.Count - 1, Math.Floor(q * ms.Count))];
        return $"n={ms.Count} median {P(0.5):0.00} ms, p95 {P(0.95):0.00} ms, max {ms[^1]:0.00} ms";
    }

    [Fact]
    public async Task Submission_latency_written_and_buffered_and_the_drain_after_an_outage()
    {
        const int count = 300;
        await using var api = await ApiTestServer.StartAsync(s => s with { RatePermits = 999 });
        for (var i = 0; i < 20; i++) await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = $"warm-{i}" }); // JIT, pools

        var written = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var (status, _, _) = await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = $"up-{i}" });
            written.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Assert.Equal(201, status);
        }

        api.Proxy.Cut();
        await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = "notice" }); // the first one meets the outage
        var buffered = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var (status, _, _) = await api.SubmitAsync(ApiTestServer.AcmeKey, new { orchestrator = "cfo", id = $"down-{i}" });
            buffered.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Assert.Equal(202, status);
        }

        var restored = Stopwatch.GetTimestamp();
        api.Proxy.Restore();
        while (await api.Server.Buffer.CountAsync(CancellationToken.None) > 0)
        {
            Assert.True(Stopwatch.GetElapsedTime(restored) < TimeSpan.FromMinutes(2), "the buffer did not drain");
            await Task.Delay(20);
        }
        var drain = Stopwatch.GetElapsedTime(restored);
        Assert.Equal(20 + 2 * count + 1, await api.TasksAsync());
        Assert.Equal(0, await Sql.ScalarAsync<long>(api.Database, "SELECT count(*) FROM (SELECT id FROM tasks GROUP BY id HAVING count(*) > 1) d"));

        output.WriteLine($"POST /api/tasks written to PostgreSQL : {Describe(written)}");
        output.WriteLine($"POST /api/tasks buffered (DB down)    : {Describe(buffered)}");
        output.WriteLine($"drain of {count + 1} buffered tasks after the database returned: {drain.TotalMilliseconds:0} ms (includes the flusher's backoff wait, max {api.Server.Settings.ReconnectMaxBackoff.TotalMilliseconds:0} ms)");
    }
}
