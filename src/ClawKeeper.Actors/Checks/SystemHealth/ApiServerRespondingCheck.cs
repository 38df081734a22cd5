using System.Diagnostics;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Checks.SystemHealth;

/// <summary><c>api_server_responding</c>: a real <c>GET {url}/health</c> answers 2xx within the limit.</summary>
public sealed class ApiServerRespondingCheck : IPlatformCheck
{
    private readonly HttpClient _http;
    private readonly SystemHealthSettings _settings;

    public ApiServerRespondingCheck(HttpClient http, SystemHealthSettings settings)
    {
        _http = http;
        _settings = settings;
    }

    public string Id => "api_server_responding";
    // The runner's timeout is a safety net; the API's own deadline below turns a hang into a `fail`.
    public TimeSpan Timeout => _settings.ApiTimeout + TimeSpan.FromSeconds(1);

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        var threshold = $"GET /health answers 2xx in < {_settings.ApiMaxResponseTime.TotalMilliseconds:0} ms";
        if (_settings.ApiUrl is null)
            return CheckOutcome.Skipped(threshold, "no API server configured (clawkeeper.checks.system-health.api-server.url is empty)");

        var url = new Uri(_settings.ApiUrl, "health");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_settings.ApiTimeout);
        var stopwatch = Stopwatch.StartNew();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            var elapsed = stopwatch.Elapsed.TotalMilliseconds;
            var observed = $"HTTP {(int)response.StatusCode} in {elapsed:0} ms";
            if (!response.IsSuccessStatusCode)
                return CheckOutcome.Fail(observed, threshold, $"{url} answered {(int)response.StatusCode} {response.ReasonPhrase}");
            if (elapsed >= _settings.ApiMaxResponseTime.TotalMilliseconds)
                return CheckOutcome.Fail(observed, threshold, $"{url} answered but too slowly ({elapsed:0} ms)");
            return CheckOutcome.Pass(observed, threshold);
        }
        catch (HttpRequestException ex)
        {
            return CheckOutcome.Fail("no answer", threshold, $"{url} unreachable: {ex.Message}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return CheckOutcome.Fail("no answer", threshold, $"{url} did not answer within {_settings.ApiTimeout.TotalMilliseconds:0} ms");
        }
    }
}
