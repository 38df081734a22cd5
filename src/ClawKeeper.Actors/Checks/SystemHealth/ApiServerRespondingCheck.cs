using System.Diagnostics;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Checks.SystemHealth;

/// <summary>
/// <c>api_server_responding</c>: a real <c>GET {url}/health</c> answers 2xx within the limit. The URL is
/// <c>checks.system-health.api-server.url</c> when configured, else the API server hosted by this node
/// (resolved at each run: it is known only once the listener started, and null while it is stopped,
/// which fails the check), else the check is skipped.
/// </summary>
public sealed class ApiServerRespondingCheck : IPlatformCheck
{
    private const string AnsweredTooSlowly = "answered but too slowly";

    /// <summary>
    /// Down = not answering <c>/health</c> (not listening, refused, timed out, or a non-2xx answer): what a restart
    /// can mend. A 2xx that came too slowly is a failed check but not a down server: it is not restarted.
    /// </summary>
    public static bool IsDown(CheckResult result) =>
        result.Status.IsProblem() && !result.Detail.Contains(AnsweredTooSlowly, StringComparison.Ordinal);

    private readonly HttpClient _http;
    private readonly SystemHealthSettings _settings;
    private readonly Func<Uri?>? _hostedApi;

    /// <param name="hostedApi">The base URL of the API hosted by this node now (null while it does not listen); null = no hosted API.</param>
    public ApiServerRespondingCheck(HttpClient http, SystemHealthSettings settings, Func<Uri?>? hostedApi = null)
    {
        _http = http;
        _settings = settings;
        _hostedApi = hostedApi;
    }

    public string Id => "api_server_responding";
    // The runner's timeout is a safety net; the API's own deadline below turns a hang into a `fail`.
    public TimeSpan Timeout => _settings.ApiTimeout + TimeSpan.FromSeconds(1);

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        var threshold = $"GET /health answers 2xx in < {_settings.ApiMaxResponseTime.TotalMilliseconds:0} ms";
        Uri baseUrl;
        if (_settings.ApiUrl is { } configured)
            baseUrl = configured;
        else if (_hostedApi is null)
            return CheckOutcome.Skipped(threshold, "no API server configured (clawkeeper.checks.system-health.api-server.url is empty) and this node hosts none");
        else if (_hostedApi() is { } hosted)
            baseUrl = hosted;
        else
            return CheckOutcome.Fail("not listening", threshold, "the API server hosted by this node is not listening (its listener is stopped)");

        var url = new Uri(baseUrl, "health");
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
                return CheckOutcome.Fail(observed, threshold, $"{url} {AnsweredTooSlowly} ({elapsed:0} ms)");
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
