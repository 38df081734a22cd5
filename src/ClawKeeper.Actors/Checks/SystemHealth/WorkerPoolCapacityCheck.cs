using System.Globalization;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Checks.SystemHealth;

/// <summary><c>worker_pool_capacity</c>: every orchestrator's worker pool has free workers.</summary>
public sealed class WorkerPoolCapacityCheck : IPlatformCheck
{
    private readonly OrchestratorPinger _pinger;
    private readonly SystemHealthSettings _settings;

    public WorkerPoolCapacityCheck(OrchestratorPinger pinger, SystemHealthSettings settings)
    {
        _pinger = pinger;
        _settings = settings;
    }

    public string Id => "worker_pool_capacity";
    public TimeSpan Timeout => _settings.WorkerPoolTimeout;

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        var pingTimeout = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(10).Ticks, (Timeout - TimeSpan.FromMilliseconds(200)).Ticks));
        var pongs = await _pinger.PingAllAsync(TimeSpan.FromTicks(Math.Min(pingTimeout.Ticks, _settings.OrchestratorPingTimeout.Ticks)), cancellationToken).ConfigureAwait(false);
        return Evaluate(pongs, _settings.WorkerPoolWarnBelowFreeRatio);
    }

    /// <summary>Pure: fail on a saturated pool, warn below the free ratio, error when no pool answered.</summary>
    public static CheckOutcome Evaluate(IReadOnlyList<(string Name, OrchestratorPong? Pong)> pongs, double warnBelowFreeRatio)
    {
        var threshold = $"every pool has a free worker; warn below {warnBelowFreeRatio.ToString("P0", CultureInfo.InvariantCulture)} free";
        var answered = pongs.Where(p => p.Pong is not null).Select(p => p.Pong!).ToList();
        var unknown = pongs.Where(p => p.Pong is null).Select(p => p.Name).ToList();
        if (answered.Count == 0)
            return CheckOutcome.Error(threshold, pongs.Count == 0 ? "no worker pool is configured" : "no orchestrator answered: pool capacity unknown");

        var total = answered.Sum(p => p.Workers);
        var free = answered.Sum(p => p.FreeWorkers);
        var observed = $"{free}/{total} workers free in {answered.Count} pools";
        var saturated = answered.Where(p => p.FreeWorkers == 0).ToList();
        var tight = answered.Where(p => p.FreeWorkers > 0 && (double)p.FreeWorkers / p.Workers < warnBelowFreeRatio).ToList();
        var unknownNote = unknown.Count == 0 ? "" : $"; capacity unknown (no answer): {string.Join(", ", unknown)}";

        if (saturated.Count > 0)
            return CheckOutcome.Fail(observed, threshold,
                "no free worker in: " + string.Join(", ", saturated.Select(p => $"{p.Orchestrator} {p.BusyWorkers}/{p.Workers} busy")) + unknownNote);
        if (tight.Count > 0 || unknown.Count > 0)
            return CheckOutcome.Warn(observed, threshold,
                (tight.Count > 0 ? "nearly full: " + string.Join(", ", tight.Select(p => $"{p.Orchestrator} {p.FreeWorkers}/{p.Workers} free")) : "all answering pools have room")
                + unknownNote);
        return CheckOutcome.Pass(observed, threshold);
    }
}
