using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Actors.Checks.SystemHealth;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>api_server_responding and rate_limiters_functioning against the API hosted by the node, by default.</summary>
public class ApiChecksSpec
{
    private static readonly HttpClient Http = new();
    private static readonly CheckContext Context = new("heartbeat-test", DateTimeOffset.UtcNow, null);

    // The response-time limit is not what these tests are about (a busy 2-core machine): 5 s.
    private static SystemHealthSettings Health(Uri? configured = null) => new(
        ApiUrl: configured, ApiMaxResponseTime: TimeSpan.FromSeconds(5), ApiTimeout: TimeSpan.FromSeconds(10),
        DatabaseTimeout: TimeSpan.FromSeconds(5), OrchestratorPingTimeout: TimeSpan.FromMilliseconds(500),
        WorkerPoolWarnBelowFreeRatio: 0.2, WorkerPoolTimeout: TimeSpan.FromSeconds(2), CircuitBreakersTimeout: TimeSpan.FromSeconds(1));

    private static readonly SecurityPostureSettings Posture = SecurityPostureSettings.Defaults with { BurstTimeout = TimeSpan.FromSeconds(20) };

    private static Task<CheckResult> Run(IPlatformCheck check) => CheckRunner.RunOneAsync(check, Context, CancellationToken.None);

    [Fact]
    public async Task Api_server_responding_targets_the_hosted_api_and_fails_while_its_listener_is_stopped()
    {
        await using var api = await ApiTestServer.StartAsync();
        var check = new ApiServerRespondingCheck(Http, Health(), () => api.Server.BaseUrl);
        var up = await Run(check);
        Assert.True(up.Status == CheckStatus.Pass, $"{up.Status}: {up.Observed} {up.Detail}");

        await api.Server.StopListenerAsync();
        var down = await Run(check);
        Assert.Equal(CheckStatus.Fail, down.Status);
        Assert.Contains("not listening", down.Detail);

        // What the heartbeat's repair does: restart, re-check.
        Assert.True((await api.Server.RestartAsync(CancellationToken.None)).Listening);
        Assert.Equal(CheckStatus.Pass, (await Run(check)).Status);
        Assert.Equal(0, await api.FlushedSecurityEventsAsync());
    }

    [Fact]
    public async Task Api_server_responding_fails_when_the_listener_is_gone_but_the_url_is_still_known()
    {
        await using var api = await ApiTestServer.StartAsync();
        var url = api.Server.BaseUrl!;
        await api.Server.StopListenerAsync();
        var result = await Run(new ApiServerRespondingCheck(Http, Health(), () => url));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("unreachable", result.Detail);
    }

    [Fact]
    public async Task A_configured_url_wins_and_without_either_the_checks_are_skipped()
    {
        await using var api = await ApiTestServer.StartAsync();
        var refusing = LoopbackHttpServer.RefusingAddress();
        var configured = await Run(new ApiServerRespondingCheck(Http, Health(refusing), () => api.Server.BaseUrl));
        Assert.Equal(CheckStatus.Fail, configured.Status);
        Assert.Contains(refusing.Authority, configured.Detail);

        Assert.Equal(CheckStatus.Skipped, (await Run(new ApiServerRespondingCheck(Http, Health()))).Status);
        Assert.Equal(CheckStatus.Skipped, (await Run(new RateLimitersFunctioningCheck(Http, Posture))).Status);

        var limiter = await Run(new RateLimitersFunctioningCheck(Http, Posture with { RateLimitedUrl = new Uri(refusing, "api/ping") }, api.Server));
        Assert.Equal(CheckStatus.Fail, limiter.Status);
        Assert.Contains("connection refused", limiter.Detail);
    }

    [Fact]
    public async Task Rate_limiters_functioning_bursts_the_hosted_api_and_creates_no_event_and_no_task()
    {
        await using var api = await ApiTestServer.StartAsync(s => s with { RatePermits = 20 });
        var result = await Run(new RateLimitersFunctioningCheck(Http, Posture, api.Server));
        Assert.True(result.Status == CheckStatus.Pass, $"{result.Status}: {result.Observed} | {result.Detail}");
        Assert.Matches(@"^21 requests in \d+ ms: 200 ×20, 429 ×1$", result.Observed);
        Assert.Contains("/api/ping", result.Detail);

        // A second burst in the same window: still refused (the probe's own partition), still nothing recorded.
        Assert.Equal(CheckStatus.Pass, (await Run(new RateLimitersFunctioningCheck(Http, Posture, api.Server))).Status);
        Assert.Equal(0, await api.FlushedSecurityEventsAsync());
        Assert.Equal(0, await api.TasksAsync());
        // Other keys are not affected by the probe's bursts.
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "api/ping", ApiTestServer.AcmeKey)).Status);
    }

    /// <summary>The probe's claimed limit is below what the server enforces: as if the limiter were off.</summary>
    private sealed class UnderstatedLimit(ClawKeeper.Host.Api.ApiServer server, int claimed) : IRateLimitProbeSource
    {
        public RateLimitProbe? CurrentRateLimitProbe() => server.CurrentRateLimitProbe() is { } probe ? probe with { Limit = claimed } : null;
    }

    [Fact]
    public async Task Rate_limiters_functioning_fails_when_the_limiter_does_not_engage_or_the_api_is_down()
    {
        await using var api = await ApiTestServer.StartAsync(s => s with { RatePermits = 50 });
        var off = await Run(new RateLimitersFunctioningCheck(Http, Posture, new UnderstatedLimit(api.Server, 5)));
        Assert.Equal(CheckStatus.Fail, off.Status);
        Assert.Contains("the rate limiter did not engage", off.Detail);

        await api.Server.StopListenerAsync();
        var down = await Run(new RateLimitersFunctioningCheck(Http, Posture, api.Server));
        Assert.Equal(CheckStatus.Fail, down.Status);
        Assert.Contains("not listening", down.Detail);
        Assert.Equal(0, await api.FlushedSecurityEventsAsync());
    }
}
