using Akka.Actor;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// The node's <see cref="HealthCheckService"/> (Akka.Hosting's checks, found through the ActorSystem's
/// DI) behind a short cache: a report is reused for <see cref="OpsSettings.HealthCache"/>, and
/// requests that arrive while one is being produced wait for it instead of running the probes again.
/// A flood of <c>/health/ready</c> or status-page requests thus runs the probes (one journal round
/// trip each) at most once per window. Keyed by the predicate instance: the ops server uses one per tag.
/// </summary>
public sealed class OpsHealthCache : HealthCheckService
{
    private readonly ActorSystem _system;
    private readonly SharedResultCache<object, HealthReport> _reports;
    private readonly object _noPredicate = new();
    private long _runs;

    public OpsHealthCache(ActorSystem system, TimeSpan ttl, Func<DateTimeOffset>? clock = null)
    {
        _system = system;
        _reports = new SharedResultCache<object, HealthReport>(ttl, clock);
    }

    /// <summary>How many times the probes actually ran (a measurement for specs and docs).</summary>
    public long Runs => Interlocked.Read(ref _runs);

    public override Task<HealthReport> CheckHealthAsync(Func<HealthCheckRegistration, bool>? predicate, CancellationToken cancellationToken = default) =>
        _reports.Caches
            ? _reports.GetAsync((object?)predicate ?? _noPredicate, () => RunAsync(predicate)).WaitAsync(cancellationToken)
            : RunAsync(predicate);

    private async Task<HealthReport> RunAsync(Func<HealthCheckRegistration, bool>? predicate)
    {
        Interlocked.Increment(ref _runs);
        if (OpsHealthChecks.ServiceOf(_system) is not { } service)
            return new HealthReport(new Dictionary<string, HealthReportEntry>(), TimeSpan.Zero);
        // Not the caller's token: other requests may be waiting for this report.
        return await service.CheckHealthAsync(predicate, CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>
/// Results that are expensive to produce, behind a short window: a finished result is reused for
/// <c>ttl</c>, one still being produced is joined whatever its age (concurrent callers share the one load
/// in flight), a failed one is produced again. A ttl of zero or less caches nothing. Used for the health
/// reports (<see cref="OpsHealthCache"/>) and the status page's database figures.
/// </summary>
internal sealed class SharedResultCache<TKey, TValue>(TimeSpan ttl, Func<DateTimeOffset>? clock = null) where TKey : notnull
{
    private readonly Func<DateTimeOffset> _clock = clock ?? (() => DateTimeOffset.UtcNow);
    private readonly object _gate = new();
    private readonly Dictionary<TKey, (Task<TValue> Result, DateTimeOffset Started)> _entries = new();

    public bool Caches => ttl > TimeSpan.Zero;

    public Task<TValue> GetAsync(TKey key, Func<Task<TValue>> load)
    {
        if (!Caches) return load();
        lock (_gate)
        {
            var now = _clock();
            if (!_entries.TryGetValue(key, out var entry) || (entry.Result.IsCompleted && now - entry.Started >= ttl) || entry.Result.IsFaulted)
                _entries[key] = entry = (load(), now);
            return entry.Result;
        }
    }
}
