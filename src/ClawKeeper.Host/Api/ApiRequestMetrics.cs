using Akka.Actor;
using Akka.Actor.Setup;

namespace ClawKeeper.Host.Api;

/// <summary>One route and status as counted by <see cref="ApiRequestMetrics"/>.</summary>
public sealed record ApiRequestCount(string Route, int Status, long Count);

/// <summary>A snapshot of the API's request metrics for <c>/metrics</c>.</summary>
/// <param name="DurationSumSeconds">Sum of all request durations since start (per route).</param>
/// <param name="RecentAverageSeconds">Mean duration of the requests of the last <see cref="ApiRequestMetrics.RecentWindow"/>; NaN when none.</param>
public sealed record ApiRequestSnapshot(
    IReadOnlyList<ApiRequestCount> Counts,
    IReadOnlyDictionary<string, (long Count, double DurationSumSeconds)> Durations,
    double RecentAverageSeconds,
    int RecentSamples);

/// <summary>
/// Durations and status counts of the requests the API served (each request is timed from the
/// first middleware to the end of its response). Thread-safe; cheap enough for every request.
/// </summary>
public sealed class ApiRequestMetrics
{
    public static readonly TimeSpan RecentWindow = TimeSpan.FromMinutes(5);
    private const int MaxRecent = 8192;

    private readonly object _lock = new();
    private readonly Dictionary<(string Route, int Status), long> _counts = new();
    private readonly Dictionary<string, (long Count, double Sum)> _durations = new(StringComparer.Ordinal);
    private readonly Queue<(long AtTicks, double Seconds)> _recent = new();

    public void Record(string route, int status, TimeSpan duration, DateTimeOffset now)
    {
        lock (_lock)
        {
            _counts[(route, status)] = _counts.GetValueOrDefault((route, status)) + 1;
            var (count, sum) = _durations.GetValueOrDefault(route);
            _durations[route] = (count + 1, sum + duration.TotalSeconds);
            _recent.Enqueue((now.UtcTicks, duration.TotalSeconds));
            while (_recent.Count > MaxRecent) _recent.Dequeue();
        }
    }

    public ApiRequestSnapshot Snapshot(DateTimeOffset now)
    {
        lock (_lock)
        {
            var from = (now - RecentWindow).UtcTicks;
            while (_recent.Count > 0 && _recent.Peek().AtTicks < from) _recent.Dequeue();
            var recent = _recent.Count;
            return new ApiRequestSnapshot(
                _counts.OrderBy(c => c.Key.Route, StringComparer.Ordinal).ThenBy(c => c.Key.Status)
                    .Select(c => new ApiRequestCount(c.Key.Route, c.Key.Status, c.Value)).ToList(),
                _durations.ToDictionary(d => d.Key, d => (d.Value.Count, d.Value.Sum), StringComparer.Ordinal),
                recent == 0 ? double.NaN : _recent.Average(r => r.Seconds),
                recent);
        }
    }
}

/// <summary>Carries the node's <see cref="ApiRequestMetrics"/> to the ops surface through the ActorSystem's setup.</summary>
public sealed class ApiMetricsSetup(ApiRequestMetrics metrics) : Setup
{
    public ApiRequestMetrics Metrics { get; } = metrics;

    /// <summary>The API metrics of the node that runs <paramref name="system"/>; null when it hosts no API.</summary>
    public static ApiRequestMetrics? Of(ActorSystem system) =>
        system.Settings.Setup.Get<ApiMetricsSetup>() is { HasValue: true } setup ? setup.Value.Metrics : null;
}
