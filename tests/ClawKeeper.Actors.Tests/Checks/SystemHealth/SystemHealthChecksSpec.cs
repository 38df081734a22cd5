using Akka.Actor;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SystemHealth;
using ClawKeeper.Actors.Integrations;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.SystemHealth;

/// <summary>system_health checks against real parts: Kestrel on loopback, PostgreSQL, actors, Akka breakers.</summary>
public class SystemHealthChecksSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly CheckContext Context = new("heartbeat-test", DateTimeOffset.UtcNow, null);
    private static readonly HttpClient Http = new();

    private static SystemHealthSettings Settings(Uri? api = null) => new(
        ApiUrl: api, ApiMaxResponseTime: TimeSpan.FromMilliseconds(100), ApiTimeout: TimeSpan.FromSeconds(2),
        DatabaseTimeout: TimeSpan.FromSeconds(5), OrchestratorPingTimeout: TimeSpan.FromMilliseconds(500),
        WorkerPoolWarnBelowFreeRatio: 0.2, WorkerPoolTimeout: TimeSpan.FromSeconds(2), CircuitBreakersTimeout: TimeSpan.FromSeconds(1));

    private static Task<CheckResult> Run(IPlatformCheck check) => CheckRunner.RunOneAsync(check, Context, CancellationToken.None);

    [Fact]
    public async Task Api_check_passes_on_a_fast_2xx_and_fails_on_5xx_slow_and_refused()
    {
        await using var api = await LoopbackHttpServer.StartAsync();
        var check = new ApiServerRespondingCheck(Http, Settings(api.BaseAddress));
        await Run(check); // warm the connection pool: the contract measures the API, not the TCP handshake of the first call
        var healthy = await Run(check);
        Assert.True(healthy.Status == CheckStatus.Pass, healthy.Detail + healthy.Observed);
        Assert.Matches("^HTTP 200 in \\d+ ms$", healthy.Observed);

        api.Fault = new HttpFault.Status(500);
        var broken = await Run(check);
        Assert.Equal(CheckStatus.Fail, broken.Status);
        Assert.StartsWith("HTTP 500", broken.Observed);

        api.Fault = new HttpFault.Slow(TimeSpan.FromMilliseconds(400));
        var slow = await Run(check);
        Assert.Equal(CheckStatus.Fail, slow.Status);
        Assert.Contains("too slowly", slow.Detail);

        api.Fault = new HttpFault.Slow(TimeSpan.FromSeconds(10));
        var hanging = await Run(check);
        Assert.Equal(CheckStatus.Fail, hanging.Status);
        Assert.Contains("did not answer within 2000 ms", hanging.Detail);

        var refused = await Run(new ApiServerRespondingCheck(Http, Settings(LoopbackHttpServer.RefusingAddress())));
        Assert.Equal(CheckStatus.Fail, refused.Status);
        Assert.Contains("unreachable", refused.Detail);

        Assert.True(api.RequestCount >= 5);
    }

    [Fact]
    public async Task Api_check_is_skipped_with_the_reason_when_no_api_is_configured()
    {
        var result = await Run(new ApiServerRespondingCheck(Http, Settings()));
        Assert.Equal(CheckStatus.Skipped, result.Status);
        Assert.Contains("api-server.url", result.Detail);
    }

    [Fact]
    public async Task Database_check_passes_on_a_live_database_and_fails_when_it_is_down()
    {
        await using var live = NpgsqlDataSource.Create(await TestDatabases.CreateMigratedAsync());
        var up = await Run(new DatabaseConnectionCheck(live, Settings()));
        Assert.Equal(CheckStatus.Pass, up.Status);
        Assert.Contains("PostgreSQL 15", up.Detail);

        var refused = new NpgsqlConnectionStringBuilder(live.ConnectionString) { Port = LoopbackHttpServer.RefusingAddress().Port, Password = "never-logged", Timeout = 2 };
        await using var down = NpgsqlDataSource.Create(refused.ConnectionString);
        var result = await Run(new DatabaseConnectionCheck(down, Settings()));
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal("connection failed", result.Observed);
        Assert.DoesNotContain("never-logged", result.Detail);
    }

    [Fact]
    public async Task Orchestrators_check_names_the_orchestrator_that_does_not_answer()
    {
        var all = OrchestratorCatalog.Names.Select(n => new OrchestratorDefinition(n, 4)).ToList();
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(all.Where(o => o.Name != "support-lead").ToList()));
        var pinger = new OrchestratorPinger(fleet, all);

        var reachable = await Run(new OrchestratorsReachableCheck(pinger, Settings()));
        Assert.Equal(CheckStatus.Fail, reachable.Status);
        Assert.Equal("8/9 answered", reachable.Observed);
        Assert.Equal("no answer from: support-lead", reachable.Detail);

        var capacity = await Run(new WorkerPoolCapacityCheck(pinger, Settings()));
        Assert.Equal(CheckStatus.Warn, capacity.Status);
        Assert.Contains("capacity unknown (no answer): support-lead", capacity.Detail);

        var complete = Sys.ActorOf(OrchestratorFleetActor.Props(all));
        var healthy = await Run(new OrchestratorsReachableCheck(new OrchestratorPinger(complete, all), Settings()));
        Assert.Equal(CheckStatus.Pass, healthy.Status);
        Assert.Equal("9/9 answered", healthy.Observed);
    }

    [Fact]
    public void Worker_pool_capacity_fails_on_a_saturated_pool_and_warns_on_a_tight_one()
    {
        (string, OrchestratorPong?) Pool(string name, int workers, int busy) => (name, new OrchestratorPong(name, workers, busy));

        var saturated = WorkerPoolCapacityCheck.Evaluate(new[] { Pool("cfo", 8, 8), Pool("support-lead", 6, 1) }, 0.2);
        Assert.Equal(CheckStatus.Fail, saturated.Status);
        Assert.Equal("5/14 workers free in 2 pools", saturated.Observed);
        Assert.Contains("cfo 8/8 busy", saturated.Detail);

        var tight = WorkerPoolCapacityCheck.Evaluate(new[] { Pool("accounts-payable-lead", 15, 13) }, 0.2);
        Assert.Equal(CheckStatus.Warn, tight.Status);
        Assert.Contains("accounts-payable-lead 2/15 free", tight.Detail);

        Assert.Equal(CheckStatus.Pass, WorkerPoolCapacityCheck.Evaluate(new[] { Pool("cfo", 8, 2) }, 0.2).Status);
        Assert.Equal(CheckStatus.Error, WorkerPoolCapacityCheck.Evaluate(new[] { ("cfo", (OrchestratorPong?)null) }, 0.2).Status);
    }

    [Fact]
    public async Task Circuit_breaker_check_reads_the_real_breaker_state()
    {
        var breakers = new ProviderCircuitBreakers(Sys.Scheduler, new[]
        {
            new ProviderSettings("plaid", MaxFailures: 2, CallTimeout: TimeSpan.FromSeconds(1), ResetTimeout: TimeSpan.FromMinutes(5)),
            new ProviderSettings("stripe", MaxFailures: 2, CallTimeout: TimeSpan.FromSeconds(1), ResetTimeout: TimeSpan.FromMinutes(5)),
        });
        var check = new CircuitBreakersClosedCheck(breakers, Settings());
        var closed = await Run(check);
        Assert.Equal(CheckStatus.Pass, closed.Status);
        Assert.Equal("2/2 closed", closed.Observed);

        for (var i = 0; i < 2; i++)
            await Assert.ThrowsAsync<HttpRequestException>(() =>
                breakers.CallAsync<int>("plaid", _ => Task.FromException<int>(new HttpRequestException("connection refused (127.0.0.1)"))));

        var open = await Run(check);
        Assert.Equal(CheckStatus.Fail, open.Status);
        Assert.Equal("1/2 closed", open.Observed);
        Assert.Contains("plaid open since", open.Detail);
        Assert.Contains("connection refused", open.Detail);
    }
}
