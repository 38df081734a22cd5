using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>
/// A rate-limited endpoint of the API hosted by this node, with the credential to call it: a burst
/// with <see cref="BearerToken"/> is limited per key like any client's, and creates nothing.
/// </summary>
/// <param name="Limit">The hosted limiter's permits per window (the burst sends one more).</param>
public sealed record RateLimitProbe(Uri Url, string BearerToken, int Limit)
{
    public override string ToString() => $"RateLimitProbe {{ Url = {Url}, Limit = {Limit} }}"; // never the token
}

/// <summary>The API hosted by this node, as <c>rate_limiters_functioning</c> probes it.</summary>
public interface IRateLimitProbeSource
{
    /// <summary>The probe now; null while the hosted API does not listen.</summary>
    RateLimitProbe? CurrentRateLimitProbe();
}

/// <summary>
/// <c>rate_limiters_functioning</c>: a real burst of <c>limit + 1</c> concurrent GETs against the
/// configured rate-limited endpoint of the ClawKeeper API (and nothing else), bounded by
/// <see cref="SecurityPostureSettings.BurstTimeout"/>. Passes when at least one answer is HTTP 429 and
/// none is 5xx; an API that cannot be reached fails. Without a configured URL it bursts the API
/// hosted by this node (authenticated with the node's probe key, against its configured limit: no
/// security event, no task); skipped with the reason when there is neither.
/// </summary>
public sealed class RateLimitersFunctioningCheck : IPlatformCheck
{
    private readonly HttpClient _http;
    private readonly SecurityPostureSettings _settings;
    private readonly IRateLimitProbeSource? _hosted;

    public RateLimitersFunctioningCheck(HttpClient http, SecurityPostureSettings settings, IRateLimitProbeSource? hosted = null)
    {
        _http = http;
        _settings = settings;
        _hosted = hosted;
    }

    public string Id => "rate_limiters_functioning";

    // The burst has its own deadline (a hang is a `fail`); the runner's timeout is only a safety net.
    public TimeSpan Timeout => _settings.BurstTimeout + TimeSpan.FromSeconds(2);

    private string Threshold => ThresholdFor(_settings.RateLimit);

    private string ThresholdFor(int limit) =>
        $"a burst of {limit + 1} requests (limit {limit}) gets ≥ 1 HTTP 429 and no 5xx within {PlatformDurations.Describe(_settings.BurstTimeout)}";

    /// <summary>One request of the burst: its status code, or why it has none.</summary>
    public sealed record BurstAnswer(int? Status, string? TransportError, bool Refused, bool Unanswered);

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        Uri url;
        string? bearer = null;
        var limit = _settings.RateLimit;
        if (_settings.RateLimitedUrl is { } configured)
            url = configured;
        else if (_hosted is null)
            return CheckOutcome.Skipped(Threshold, "no rate-limited API endpoint configured (clawkeeper.checks.security-posture.rate-limiter.url is empty) and this node hosts no API");
        else if (_hosted.CurrentRateLimitProbe() is { } probe)
            (url, bearer, limit) = (probe.Url, probe.BearerToken, probe.Limit);
        else
            return CheckOutcome.Fail("not listening", Threshold, "the API server hosted by this node is not listening, so its rate limiter cannot be probed");

        var count = limit + 1;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_settings.BurstTimeout);
        var stopwatch = Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => SendAsync(url, bearer, deadline.Token, cancellationToken))).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return Evaluate(url, answers, stopwatch.Elapsed, ThresholdFor(limit));
    }

    private async Task<BurstAnswer> SendAsync(Uri url, string? bearer, CancellationToken deadline, CancellationToken cancellationToken)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (bearer is not null) request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline).ConfigureAwait(false);
            return new BurstAnswer((int)response.StatusCode, null, false, false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new BurstAnswer(null, null, false, true);
        }
        catch (HttpRequestException ex)
        {
            var refused = ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused } || ex.HttpRequestError == HttpRequestError.ConnectionError;
            return new BurstAnswer(null, ex.Message, refused, false);
        }
    }

    /// <summary>Pure: the verdict on a burst's answers.</summary>
    public static CheckOutcome Evaluate(Uri url, IReadOnlyList<BurstAnswer> answers, TimeSpan elapsed, string threshold)
    {
        var statuses = answers.Where(a => a.Status is not null).GroupBy(a => a.Status!.Value).OrderBy(g => g.Key)
            .Select(g => $"{g.Key} ×{g.Count()}").ToList();
        var tooMany = answers.Count(a => a.Status == (int)HttpStatusCode.TooManyRequests);
        var serverErrors = answers.Where(a => a.Status >= 500).ToList();
        var unanswered = answers.Count(a => a.Unanswered);
        var transport = answers.Where(a => a.TransportError is not null).ToList();
        var summary = string.Join(", ", statuses.Concat(unanswered > 0 ? new[] { $"unanswered ×{unanswered}" } : Array.Empty<string>())
            .Concat(transport.Count > 0 ? new[] { $"transport error ×{transport.Count}" } : Array.Empty<string>()));
        var observed = $"{answers.Count} requests in {elapsed.TotalMilliseconds:0} ms: {summary}";

        if (answers.All(a => a.Status is null && a.TransportError is not null))
            return CheckOutcome.Fail(observed, threshold,
                $"{url} unreachable{(transport.All(t => t.Refused) ? " (connection refused)" : "")}: {transport[0].TransportError}");
        if (serverErrors.Count > 0)
            return CheckOutcome.Fail(observed, threshold, $"{url} answered the burst with {serverErrors.Count} server error(s) ({string.Join(", ", serverErrors.Select(e => e.Status).Distinct())}): the limiter must refuse with 429, not fail");
        if (tooMany == 0)
            return CheckOutcome.Fail(observed, threshold,
                $"none of the {answers.Count} requests to {url} was refused with 429: the rate limiter did not engage" +
                (unanswered > 0 ? $" ({unanswered} still unanswered when the burst's deadline passed)" : ""));
        if (unanswered > 0 || transport.Count > 0)
            return CheckOutcome.Warn(observed, threshold,
                $"the limiter refused {tooMany} request(s) with 429, but {unanswered} went unanswered and {transport.Count} failed in transport" +
                (transport.Count > 0 ? $" ({transport[0].TransportError})" : ""));
        return CheckOutcome.Pass(observed, threshold, $"the limiter at {url} refused {tooMany} of {answers.Count} requests with 429");
    }
}
