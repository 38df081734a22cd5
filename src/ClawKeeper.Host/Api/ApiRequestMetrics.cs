using System.Globalization;
using Akka.Actor;
using Akka.Actor.Setup;
using ClawKeeper.Host.Ops;
using Prometheus;

namespace ClawKeeper.Host.Api;

/// <summary>
/// The requests the API served, on the node's <see cref="NodeMetrics"/>: a histogram of durations by
/// route template and status class (each request is timed from the first middleware to the end of its
/// response) and a counter by route and exact status. Thread-safe; cheap enough for every request.
/// </summary>
public sealed class ApiRequestMetrics
{
    /// <summary>Upper bounds (seconds) of the request-duration buckets: 5 ms to 10 s.</summary>
    public static readonly double[] DurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Histogram _duration;
    private readonly Counter _requests;
    private readonly Counter _addressLimited;
    private readonly Counter _poolExhausted;

    public ApiRequestMetrics(NodeMetrics? node = null)
    {
        Node = node ?? new NodeMetrics();
        _duration = Node.Factory.CreateHistogram("clawkeeper_api_request_duration_seconds",
            "Time the API hosted by this node took to answer, by route template and status class (2xx, 4xx, 5xx).",
            ["route", "status_class"], new HistogramConfiguration { Buckets = DurationBuckets });
        _requests = Node.Factory.CreateCounter("clawkeeper_api_requests_total",
            "Requests the API hosted by this node answered since it started, by route template and HTTP status.", ["route", "status"]);
        _addressLimited = Node.Factory.CreateCounter("clawkeeper_api_address_limited_total",
            "Requests the API refused (429) by the per-address limit before looking their key up.");
        _poolExhausted = Node.Factory.CreateCounter("clawkeeper_api_database_pool_exhausted_total",
            "Requests the API answered 503 because every connection of its own database pool was in use.");
    }

    /// <summary>The registry these metrics live on (the node's <c>/metrics</c>).</summary>
    public NodeMetrics Node { get; }

    /// <summary>A request refused by the per-address limit before any key lookup.</summary>
    public void AddressLimited() => _addressLimited.Inc();

    /// <summary>A request that found every connection of the API's pool in use (503).</summary>
    public void PoolExhausted() => _poolExhausted.Inc();

    /// <summary>Exports <paramref name="lookups"/> (read at each scrape) as <c>clawkeeper_api_key_lookups_total</c>.</summary>
    public void TrackKeyLookups(Func<long> lookups)
    {
        var counter = Node.Factory.CreateCounter("clawkeeper_api_key_lookups_total", "API key lookups the API sent to the database.");
        Node.Registry.AddBeforeCollectCallback(() => counter.IncTo(lookups()));
    }

    public void Record(string route, int status, TimeSpan duration)
    {
        _duration.WithLabels(route, StatusClass(status)).Observe(duration.TotalSeconds);
        _requests.WithLabels(route, status.ToString(CultureInfo.InvariantCulture)).Inc();
    }

    public static string StatusClass(int status) => status is >= 100 and <= 599 ? $"{status / 100}xx" : "other";
}

/// <summary>Carries the node's <see cref="ApiRequestMetrics"/> to the ops surface through the ActorSystem's setup.</summary>
public sealed class ApiMetricsSetup(ApiRequestMetrics metrics) : Setup
{
    public ApiRequestMetrics Metrics { get; } = metrics;

    /// <summary>The API metrics of the node that runs <paramref name="system"/>; null when it hosts no API.</summary>
    public static ApiRequestMetrics? Of(ActorSystem system) =>
        system.Settings.Setup.Get<ApiMetricsSetup>() is { HasValue: true } setup ? setup.Value.Metrics : null;
}
