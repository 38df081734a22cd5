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
    private readonly TimeSpan _ttl;
    private readonly Func<DateTimeOffset> _clock;
    private readonly object _gate = new();
    private readonly Dictionary<object, (Task<HealthReport> Report, DateTimeOffset Started)> _entries = new();
    private long _runs;

    public OpsHealthCache(ActorSystem system, TimeSpan ttl, Func<DateTimeOffset>? clock = null)
    {
        _system = system;
        _ttl = ttl;
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
    }

    /// <summary>How many times the probes actually ran (a measurement for specs and docs).</summary>
    public long Runs => Interlocked.Read(ref _runs);

    public override Task<HealthReport> CheckHealthAsync(Func<HealthCheckRegistration, bool>? predicate, CancellationToken cancellationToken = default)
    {
        if (_ttl <= TimeSpan.Zero) return RunAsync(predicate);
        var key = (object?)predicate ?? _gate;
        Task<HealthReport> report;
        lock (_gate)
        {
            var now = _clock();
            // A finished report is reused within the window; one still running is joined whatever its age.
            if (!_entries.TryGetValue(key, out var entry) || (entry.Report.IsCompleted && now - entry.Started >= _ttl) || entry.Report.IsFaulted)
            {
                entry = (RunAsync(predicate), now);
                _entries[key] = entry;
            }
            report = entry.Report;
        }
        return report.WaitAsync(cancellationToken);
    }

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
/// The status page's database figures behind the same short window as the health reports: reused for
/// the window, and concurrent requests share the one load in flight.
/// </summary>
internal sealed class OpsFiguresCache
{
    private readonly TimeSpan _ttl;
    private readonly object _gate = new();
    private readonly Dictionary<bool, (Task<OpsEndpoints.PlatformFigures> Figures, DateTimeOffset Started)> _entries = new();

    public OpsFiguresCache(TimeSpan ttl) => _ttl = ttl;

    public Task<OpsEndpoints.PlatformFigures> GetAsync(bool history, Func<Task<OpsEndpoints.PlatformFigures>> load)
    {
        if (_ttl <= TimeSpan.Zero) return load();
        lock (_gate)
        {
            var now = DateTimeOffset.UtcNow;
            if (!_entries.TryGetValue(history, out var entry) || (entry.Figures.IsCompleted && now - entry.Started >= _ttl) || entry.Figures.IsFaulted)
                _entries[history] = entry = (load(), now);
            return entry.Figures;
        }
    }
}
