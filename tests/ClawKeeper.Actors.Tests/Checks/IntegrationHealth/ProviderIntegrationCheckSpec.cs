using System.Diagnostics;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.IntegrationHealth;
using ClawKeeper.Actors.Integrations;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.IntegrationHealth;

/// <summary>The provider checks against Kestrel stand-ins, Akka's own CircuitBreaker and a real seeded PostgreSQL.</summary>
public class ProviderIntegrationCheckSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly HttpClient Http = new();
    private static readonly CheckContext Context = new("heartbeat-test", DateTimeOffset.UtcNow, null);

    private static IntegrationHealthSettings Settings(TimeSpan? timeout = null, params (string Provider, Uri? Url)[] endpoints) => new(
        timeout ?? TimeSpan.FromMilliseconds(500), TimeSpan.FromHours(24),
        ProviderSettings.KnownProviders
            .Select(p => new ProviderEndpoint(p, endpoints.FirstOrDefault(e => e.Provider == p).Url, "health", IntegrationHealthSettings.RequiredByDefault.Contains(p)))
            .ToList());

    private ProviderCircuitBreakers Breakers(int maxFailures = 3, TimeSpan? resetTimeout = null) =>
        new(Sys.Scheduler, ProviderSettings.KnownProviders.Select(p =>
            new ProviderSettings(p, maxFailures, CallTimeout: TimeSpan.FromSeconds(2), ResetTimeout: resetTimeout ?? TimeSpan.FromMinutes(5))));

    private static Task<CheckResult> Run(IPlatformCheck check) => CheckRunner.RunOneAsync(check, Context, CancellationToken.None);

    private static BreakerState StateOf(ProviderCircuitBreakers breakers, string provider) =>
        breakers.Snapshot().Single(b => b.Provider == provider).State;

    [Fact]
    public async Task Healthy_providers_and_the_seeded_connections_pass()
    {
        await using var plaid = await LoopbackHttpServer.StartAsync();
        await using var quickbooks = await LoopbackHttpServer.StartAsync();
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var settings = Settings(null, ("plaid", plaid.BaseAddress), ("quickbooks", quickbooks.BaseAddress));
        var breakers = Breakers();

        var plaidResult = await Run(new ProviderIntegrationCheck("plaid", platform, Http, breakers, settings));
        Assert.True(plaidResult.Status == CheckStatus.Pass, $"{plaidResult.Status}: {plaidResult.Observed} | {plaidResult.Detail}");
        Assert.Equal("plaid_connection", plaidResult.Check);
        Assert.Matches(@"^HTTP 200 in \d+ ms; 4 plaid connection\(s\), 4 active, 0 failing$", plaidResult.Observed);

        var quickbooksResult = await Run(new ProviderIntegrationCheck("quickbooks", platform, Http, breakers, settings));
        Assert.Equal(CheckStatus.Pass, quickbooksResult.Status);
        Assert.EndsWith("2 quickbooks connection(s), 2 active, 0 failing", quickbooksResult.Observed);
        Assert.Equal(1, plaid.RequestCount);
        Assert.Equal(1, quickbooks.RequestCount);
    }

    [Fact]
    public async Task A_500_fails_and_counts_as_a_breaker_failure()
    {
        await using var stripe = await LoopbackHttpServer.StartAsync(new HttpFault.Status(500));
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var breakers = Breakers(maxFailures: 3);
        var result = await Run(new ProviderIntegrationCheck("stripe", platform, Http, breakers, Settings(null, ("stripe", stripe.BaseAddress))));

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Equal("stripe_api_reachable", result.Check);
        Assert.StartsWith("non-2xx answer; 4 stripe connection(s), 4 active, 0 failing", result.Observed);
        Assert.Contains($"{new Uri(stripe.BaseAddress, "health")} answered HTTP 500", result.Detail);
        Assert.Contains("circuit breaker closed, 1/3 consecutive failures", result.Detail);
        Assert.Equal(1, breakers.Snapshot().Single(b => b.Provider == "stripe").FailureCount);
    }

    [Fact]
    public async Task A_provider_slower_than_the_timeout_fails_on_time()
    {
        await using var plaid = await LoopbackHttpServer.StartAsync(new HttpFault.Slow(TimeSpan.FromSeconds(20)));
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var check = new ProviderIntegrationCheck("plaid", platform, Http, Breakers(), Settings(TimeSpan.FromMilliseconds(300), ("plaid", plaid.BaseAddress)));

        var stopwatch = Stopwatch.StartNew();
        var result = await Run(check);

        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"took {stopwatch.Elapsed}");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.StartsWith("no answer in time", result.Observed);
        Assert.Contains("did not answer within 300 ms", result.Detail);
    }

    [Fact]
    public async Task A_refusing_provider_opens_its_breaker_after_max_failures_and_the_check_then_says_so_without_calling()
    {
        var refusing = LoopbackHttpServer.RefusingAddress();
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var breakers = Breakers(maxFailures: 3);
        var check = new ProviderIntegrationCheck("plaid", platform, Http, breakers, Settings(null, ("plaid", refusing)));

        var first = await Run(check);
        Assert.Equal(CheckStatus.Fail, first.Status);
        Assert.StartsWith("unreachable", first.Observed);
        Assert.Contains("unreachable: ", first.Detail);
        Assert.Contains("1/3 consecutive failures", first.Detail);
        await Run(check);
        var third = await Run(check);
        Assert.Contains("the circuit breaker is now open (after 3 consecutive failures)", third.Detail);
        Assert.Equal(BreakerState.Open, StateOf(breakers, "plaid"));

        var fourth = await Run(check);
        Assert.Equal(CheckStatus.Fail, fourth.Status);
        Assert.StartsWith("not called: circuit breaker open", fourth.Observed);
        Assert.Matches(@"plaid circuit breaker open since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(last error: .+\): the call was short-circuited; next trial call in", fourth.Detail);
    }

    [Fact]
    public async Task A_provider_that_recovers_closes_its_breaker_after_the_reset_timeout()
    {
        await using var xero = await LoopbackHttpServer.StartAsync(new HttpFault.RecoverAfter(2, 503));
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var breakers = Breakers(maxFailures: 2, resetTimeout: TimeSpan.FromMilliseconds(600));
        var check = new ProviderIntegrationCheck("xero", platform, Http, breakers, Settings(null, ("xero", xero.BaseAddress)));

        Assert.Contains("answered HTTP 503", (await Run(check)).Detail);
        Assert.Contains("now open", (await Run(check)).Detail);
        var shortCircuited = await Run(check);
        Assert.StartsWith("not called: circuit breaker open", shortCircuited.Observed);
        Assert.Equal(2, xero.RequestCount); // the open breaker did not call

        var deadline = Stopwatch.StartNew();
        while (StateOf(breakers, "xero") != BreakerState.HalfOpen && deadline.Elapsed < TimeSpan.FromSeconds(3))
            await Task.Delay(50);
        Assert.Equal(BreakerState.HalfOpen, StateOf(breakers, "xero"));

        var recovered = await Run(check);
        Assert.True(recovered.Status == CheckStatus.Pass, $"{recovered.Status}: {recovered.Observed} | {recovered.Detail}");
        Assert.StartsWith("HTTP 200", recovered.Observed);
        Assert.Equal(BreakerState.Closed, StateOf(breakers, "xero"));
        Assert.Equal(3, xero.RequestCount);
    }

    [Fact]
    public async Task A_stale_sync_a_failed_sync_and_an_inactive_connection_fail_naming_the_connections()
    {
        var database = await TestDatabases.CreateSeededAsync();
        Assert.Equal(1, await Sql.ExecuteAsync(database,
            "update integration_syncs set started_at = now() - interval '3 days' - interval '1 minute', completed_at = now() - interval '3 days' where connection_id = 'conn-t-acme-bakery-stripe'"));
        await Sql.ExecuteAsync(database,
            "insert into integration_syncs (connection_id, tenant_id, provider, started_at, completed_at, outcome, detail) values ('conn-t-harbor-dental-stripe', 't-harbor-dental', 'stripe', now() - interval '2 minutes', now() - interval '1 minute', 'failed', 'HTTP 401 from Stripe: invalid API key')");
        await Sql.ExecuteAsync(database, "update integration_connections set status = 'error' where id = 'conn-t-summit-hvac-stripe'");
        await using var stripe = await LoopbackHttpServer.StartAsync();
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await Run(new ProviderIntegrationCheck("stripe", platform, Http, Breakers(), Settings(null, ("stripe", stripe.BaseAddress))));

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Matches(@"^HTTP 200 in \d+ ms; 4 stripe connection\(s\), 3 active, 3 failing$", result.Observed);
        Assert.Matches(@"conn-t-acme-bakery-stripe \(tenant t-acme-bakery\) last sync \S+ is 7\d{2}0 min old \(limit 24 h\)|conn-t-acme-bakery-stripe \(tenant t-acme-bakery\) last sync \S+ is 72 h old \(limit 24 h\)", result.Detail);
        Assert.Contains("conn-t-harbor-dental-stripe (tenant t-harbor-dental) last sync failed at ", result.Detail);
        Assert.Contains(": HTTP 401 from Stripe: invalid API key", result.Detail);
        Assert.Contains("conn-t-summit-hvac-stripe (tenant t-summit-hvac) is error", result.Detail);
        Assert.DoesNotContain("conn-t-northwind-legal-stripe", result.Detail);
    }

    [Fact]
    public async Task Optional_providers_are_skipped_and_required_ones_are_an_error_when_not_configured()
    {
        await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
        var settings = Settings();
        var breakers = Breakers();

        var quickbooks = await Run(new ProviderIntegrationCheck("quickbooks", platform, Http, breakers, settings));
        Assert.Equal(CheckStatus.Skipped, quickbooks.Status);
        Assert.Equal("quickbooks_sync", quickbooks.Check);
        Assert.Contains("clawkeeper.integrations.quickbooks.base-url is empty", quickbooks.Detail);

        var xero = await Run(new ProviderIntegrationCheck("xero", platform, Http, breakers, settings));
        Assert.Equal(CheckStatus.Skipped, xero.Status);

        var plaid = await Run(new ProviderIntegrationCheck("plaid", platform, Http, breakers, settings));
        Assert.Equal(CheckStatus.Error, plaid.Status);
        Assert.Contains("plaid is required but not configured", plaid.Detail);
        Assert.All(breakers.Snapshot(), b => Assert.Equal(0, b.FailureCount));
    }

    [Fact]
    public async Task The_configured_credential_is_sent_as_a_bearer_token()
    {
        var variable = $"CLAWKEEPER_TEST_STRIPE_KEY_{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable(variable, "sk_test_not_a_real_key");
        try
        {
            await using var stripe = await LoopbackHttpServer.StartAsync();
            var capture = new CapturingHandler(new SocketsHttpHandler());
            using var http = new HttpClient(capture);
            await using var platform = NpgsqlDataSource.Create(await TestDatabases.CreateSeededAsync());
            var settings = Settings(null, ("stripe", stripe.BaseAddress)) is var s
                ? s with { Providers = s.Providers.Select(p => p.Provider == "stripe" ? p with { CredentialEnvironmentVariable = variable } : p).ToList() }
                : null!;

            var result = await Run(new ProviderIntegrationCheck("stripe", platform, http, Breakers(), settings));

            Assert.Equal(CheckStatus.Pass, result.Status);
            Assert.Equal("Bearer sk_test_not_a_real_key", capture.LastAuthorization);
            Assert.DoesNotContain("sk_test", result.Detail + result.Observed);
            Assert.Equal(1, stripe.RequestCount);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void The_group_has_the_four_contract_ids()
    {
        Assert.Equal(new[] { "plaid_connection", "stripe_api_reachable", "quickbooks_sync", "xero_sync" }, IntegrationHealthChecks.Ids);
        Assert.Equal(IntegrationHealthChecks.Ids, IntegrationHealthChecks.All(null, Http, Breakers(), Settings()).Select(c => c.Id));
    }

    private sealed class CapturingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        public string? LastAuthorization { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            LastAuthorization = request.Headers.Authorization?.ToString();
            return base.SendAsync(request, cancellationToken);
        }
    }
}
