using System.Diagnostics;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Testing;
using Xunit;
using static ClawKeeper.Actors.Tests.Checks.SecurityPosture.SecurityPostureTesting;

namespace ClawKeeper.Actors.Tests.Checks.SecurityPosture;

/// <summary>rate_limiters_functioning bursts against real Kestrel stand-ins.</summary>
public class RateLimitersFunctioningCheckSpec
{
    private static readonly HttpClient Http = new();

    private static RateLimitersFunctioningCheck Check(Uri? url, int limit = 5, TimeSpan? burstTimeout = null) =>
        new(Http, Posture with { RateLimitedUrl = url, RateLimit = limit, BurstTimeout = burstTimeout ?? TimeSpan.FromSeconds(3) });

    [Fact]
    public async Task A_limiter_that_refuses_past_its_limit_passes_and_the_burst_is_limit_plus_one()
    {
        await using var api = await RateLimitedStandIn.StartAsync(admit: 5);
        var result = await RunAsync(Check(api.Endpoint, limit: 5));
        Assert.True(result.Status == CheckStatus.Pass, $"{result.Status}: {result.Observed} | {result.Detail}");
        Assert.Matches(@"^6 requests in \d+ ms: 200 ×5, 429 ×1$", result.Observed);
        Assert.Equal($"the limiter at {api.Endpoint} refused 1 of 6 requests with 429", result.Detail);
        Assert.Equal(6, api.RequestCount);
    }

    [Fact]
    public async Task An_endpoint_that_never_answers_429_fails()
    {
        await using var api = await LoopbackHttpServer.StartAsync();
        var result = await RunAsync(Check(new Uri(api.BaseAddress, "v1/ping"), limit: 7));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Matches(@"^8 requests in \d+ ms: 200 ×8$", result.Observed);
        Assert.Contains("none of the 8 requests", result.Detail);
        Assert.Contains("the rate limiter did not engage", result.Detail);
        Assert.Equal(8, api.RequestCount);
    }

    [Fact]
    public async Task Server_errors_in_the_burst_fail_even_with_a_429()
    {
        await using var api = await LoopbackHttpServer.StartAsync(new HttpFault.Status(503));
        var result = await RunAsync(Check(api.BaseAddress, limit: 3));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("4 server error(s) (503)", result.Detail);

        var mixed = RateLimitersFunctioningCheck.Evaluate(api.BaseAddress,
            new[] { new RateLimitersFunctioningCheck.BurstAnswer(429, null, false, false), new RateLimitersFunctioningCheck.BurstAnswer(500, null, false, false) },
            TimeSpan.FromMilliseconds(10), "t");
        Assert.Equal(CheckStatus.Fail, mixed.Status);
    }

    [Fact]
    public async Task A_refused_connection_fails()
    {
        var result = await RunAsync(Check(new Uri(LoopbackHttpServer.RefusingAddress(), "v1/ping")));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("unreachable (connection refused)", result.Detail);
        Assert.EndsWith("transport error ×6", result.Observed);
    }

    [Fact]
    public async Task A_hanging_endpoint_fails_within_the_burst_timeout()
    {
        await using var api = await LoopbackHttpServer.StartAsync(new HttpFault.Slow(TimeSpan.FromSeconds(20)));
        var stopwatch = Stopwatch.StartNew();
        var result = await RunAsync(Check(api.BaseAddress, limit: 3, burstTimeout: TimeSpan.FromMilliseconds(400)));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(3), $"took {stopwatch.Elapsed}");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.EndsWith("unanswered ×4", result.Observed);
        Assert.Contains("4 still unanswered", result.Detail);
    }

    [Fact]
    public async Task No_endpoint_configured_is_skipped_with_the_reason()
    {
        var result = await RunAsync(Check(null));
        Assert.Equal(CheckStatus.Skipped, result.Status);
        Assert.Contains("clawkeeper.checks.security-posture.rate-limiter.url is empty", result.Detail);
    }
}
