using System.Diagnostics;
using System.Net.Http.Headers;
using Akka.Pattern;
using ClawKeeper.Actors.Integrations;
using Npgsql;

namespace ClawKeeper.Actors.Checks.IntegrationHealth;

/// <summary>
/// One provider's check of the <c>integration_health</c> group (<c>plaid_connection</c>,
/// <c>stripe_api_reachable</c>, <c>quickbooks_sync</c>, <c>xero_sync</c>), two halves run concurrently:
/// <list type="bullet">
/// <item>reachability: a real <c>GET base-url + health-path</c> with its own deadline, made through the
///   provider's Akka circuit breaker — a non-2xx answer, a refused connection or a timeout is a breaker
///   failure; an open breaker short-circuits the call and the check says since when;</item>
/// <item>the platform's view: connections of the provider whose status is not <c>active</c>, and for each
///   active connection its latest finished sync (failed, older than <see cref="IntegrationHealthSettings.MaxSyncAge"/>,
///   or none) from <c>integration_connections</c> / <c>integration_syncs</c>.</item>
/// </list>
/// The check's status is the worse of the two. Not configured (no base URL): skipped for an optional
/// provider, error for a required one (Plaid, Stripe).
/// </summary>
public sealed class ProviderIntegrationCheck : IPlatformCheck
{
    private readonly string _provider;
    private readonly HttpClient _http;
    private readonly ProviderCircuitBreakers _breakers;
    private readonly IntegrationHealthSettings _settings;
    private readonly ProviderEndpoint _endpoint;
    private readonly ProviderConnectionsQuery _connections;

    public ProviderIntegrationCheck(string provider, NpgsqlDataSource? platform, HttpClient http, ProviderCircuitBreakers breakers, IntegrationHealthSettings settings)
    {
        _provider = provider;
        Id = CheckId(provider);
        _http = http;
        _breakers = breakers;
        _settings = settings;
        _endpoint = settings.Endpoint(provider);
        _connections = new ProviderConnectionsQuery(platform, provider, settings);
    }

    /// <summary>The contract id of a provider's check.</summary>
    public static string CheckId(string provider) => provider switch
    {
        "plaid" => "plaid_connection",
        "stripe" => "stripe_api_reachable",
        "quickbooks" => "quickbooks_sync",
        "xero" => "xero_sync",
        _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "not a ClawKeeper integration provider (plaid, stripe, quickbooks, xero)"),
    };

    public string Id { get; }

    // Both halves have their own deadlines (a hang is a `fail`); the runner's timeout is only a safety net.
    public TimeSpan Timeout => _settings.Timeout + TimeSpan.FromSeconds(5);

    private string Threshold =>
        $"{_provider} answers 2xx within {Describe(_settings.Timeout)} (breaker closed); its connections active, each with a successful sync younger than {Describe(_settings.MaxSyncAge)}";

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        if (!_endpoint.Configured)
        {
            var key = $"clawkeeper.integrations.{_provider}.base-url";
            return _endpoint.Required
                ? CheckOutcome.Error(Threshold, $"{_provider} is required but not configured ({key} is empty): it could not be evaluated")
                : CheckOutcome.Skipped(Threshold, $"{_provider} is not configured ({key} is empty)");
        }

        var reachability = ProbeAsync(cancellationToken);
        var connections = _connections.RunAsync(context, cancellationToken);
        await Task.WhenAll(reachability, connections).ConfigureAwait(false);
        return Combine(await reachability.ConfigureAwait(false), await connections.ConfigureAwait(false), Threshold);
    }

    /// <summary>The worse status of the two halves, with both halves' evidence.</summary>
    public static CheckOutcome Combine(CheckOutcome reachability, CheckOutcome connections, string threshold)
    {
        var status = CheckStatusExtensions.Worst(new[] { reachability.Status, connections.Status });
        var detail = string.Join("; ", new[] { reachability.Detail, connections.Detail }.Where(d => d.Length > 0));
        return new CheckOutcome(status, $"{reachability.Observed}; {connections.Observed}", threshold, detail);
    }

    /// <summary>A provider answered, but not with 2xx: a failure for its breaker.</summary>
    private sealed class ProviderAnswerException(string message) : Exception(message);

    private async Task<CheckOutcome> ProbeAsync(CancellationToken cancellationToken)
    {
        var url = _endpoint.HealthUrl!;
        var stopwatch = Stopwatch.StartNew();
        try
        {
            var (status, elapsed) = await _breakers.CallAsync(_provider, async breakerToken =>
            {
                // The probe's deadline, the breaker's call-timeout and the runner's cancellation: whichever comes first.
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(breakerToken, cancellationToken);
                deadline.CancelAfter(_settings.Timeout);
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, url);
                    if (_endpoint.CredentialEnvironmentVariable is { } variable && Environment.GetEnvironmentVariable(variable) is { Length: > 0 } token)
                        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                    using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
                    if (!response.IsSuccessStatusCode)
                        throw new ProviderAnswerException($"{url} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                    return ((int)response.StatusCode, stopwatch.Elapsed);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"{url} did not answer within {Describe(Min(_settings.Timeout, BreakerCallTimeout()))}");
                }
            }).ConfigureAwait(false);
            return CheckOutcome.Pass($"HTTP {status} in {elapsed.TotalMilliseconds:0} ms", Threshold, "");
        }
        catch (OpenCircuitException open)
        {
            var breaker = Breaker();
            var since = breaker?.OpenedAt is { } at ? $" since {at.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}" : "";
            var lastError = breaker?.LastError is { } error ? $" (last error: {error})" : "";
            return CheckOutcome.Fail("not called: circuit breaker open", Threshold,
                $"{_provider} circuit breaker open{since}{lastError}: the call was short-circuited; next trial call in {Describe(open.RemainingDuration)}");
        }
        catch (ArgumentException ex) when (ex.ParamName == "provider")
        {
            return CheckOutcome.Error(Threshold, $"no circuit breaker is registered for {_provider}: {ex.Message}");
        }
        catch (Exception ex) when (ex is ProviderAnswerException or HttpRequestException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            var observed = ex switch
            {
                ProviderAnswerException => "non-2xx answer",
                TimeoutException => "no answer in time",
                _ => "unreachable",
            };
            var what = ex switch
            {
                HttpRequestException => $"{url} unreachable: {ex.Message}",
                TimeoutException when !ex.Message.Contains(url.AbsoluteUri, StringComparison.Ordinal) =>
                    $"{url} did not answer within the breaker's call-timeout of {Describe(BreakerCallTimeout())}",
                _ => ex.Message,
            };
            return CheckOutcome.Fail(observed, Threshold, $"{what}; {BreakerAfterFailure()}");
        }
    }

    private BreakerSnapshot? Breaker() => _breakers.Snapshot().FirstOrDefault(b => b.Provider == _provider);

    private TimeSpan BreakerCallTimeout()
    {
        try
        {
            return _breakers.Get(_provider).CallTimeout;
        }
        catch (ArgumentException)
        {
            return TimeSpan.MaxValue;
        }
    }

    private string BreakerAfterFailure()
    {
        var breaker = Breaker();
        if (breaker is null) return "no circuit breaker state available";
        var maxFailures = _breakers.Get(_provider).MaxFailures;
        return breaker.State switch
        {
            BreakerState.Open => $"the circuit breaker is now open (after {maxFailures} consecutive failures); calls are short-circuited for {Describe(breaker.ResetTimeout)}",
            BreakerState.HalfOpen => "the circuit breaker is half-open (a trial call is in flight)",
            _ => $"circuit breaker closed, {breaker.FailureCount}/{maxFailures} consecutive failures",
        };
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    internal static string Describe(TimeSpan span) =>
        span.TotalHours >= 1 && span.Ticks % TimeSpan.TicksPerHour == 0 ? $"{span.TotalHours:0} h"
        : span.TotalMinutes >= 1 && span.Ticks % TimeSpan.TicksPerMinute == 0 ? $"{span.TotalMinutes:0} min"
        : span.TotalSeconds >= 1 ? $"{span.TotalSeconds:0.#} s"
        : $"{Math.Max(0, span.TotalMilliseconds):0} ms";
}
