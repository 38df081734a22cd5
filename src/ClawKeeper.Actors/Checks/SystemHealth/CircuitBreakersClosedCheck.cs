using ClawKeeper.Actors.Integrations;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Checks.SystemHealth;

/// <summary><c>circuit_breakers_closed</c>: reads the real state of every external-API circuit breaker.</summary>
public sealed class CircuitBreakersClosedCheck : IPlatformCheck
{
    private readonly ProviderCircuitBreakers _breakers;
    private readonly SystemHealthSettings _settings;

    public CircuitBreakersClosedCheck(ProviderCircuitBreakers breakers, SystemHealthSettings settings)
    {
        _breakers = breakers;
        _settings = settings;
    }

    public string Id => "circuit_breakers_closed";
    public TimeSpan Timeout => _settings.CircuitBreakersTimeout;

    public Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken) =>
        Task.FromResult(Evaluate(_breakers.Snapshot()));

    public static CheckOutcome Evaluate(IReadOnlyList<BreakerSnapshot> breakers)
    {
        const string threshold = "every external-API circuit breaker is closed";
        if (breakers.Count == 0)
            return CheckOutcome.Error(threshold, "no circuit breaker is registered: nothing was examined");
        var open = breakers.Where(b => b.State == BreakerState.Open).ToList();
        var halfOpen = breakers.Where(b => b.State == BreakerState.HalfOpen).ToList();
        var observed = $"{breakers.Count(b => b.State == BreakerState.Closed)}/{breakers.Count} closed";
        if (open.Count > 0)
            return CheckOutcome.Fail(observed, threshold, string.Join("; ", open.Concat(halfOpen).Select(Describe)));
        if (halfOpen.Count > 0)
            return CheckOutcome.Warn(observed, threshold, string.Join("; ", halfOpen.Select(Describe)));
        return CheckOutcome.Pass(observed, threshold, "examined: " + string.Join(", ", breakers.Select(b => b.Provider)));
    }

    private static string Describe(BreakerSnapshot b) =>
        $"{b.Provider} {b.State.ToString().ToLowerInvariant()}" +
        (b.OpenedAt is { } at ? $" since {at:u}" : "") +
        (b.LastError is { } error ? $" (last error: {error})" : "") +
        $", {b.FailureCount} failures, resets after {b.ResetTimeout.TotalSeconds:0} s";
}
