using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Pattern;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Integrations;

public enum BreakerState
{
    Closed,
    HalfOpen,
    Open,
}

/// <summary>A provider's breaker as the heartbeat reports it.</summary>
public sealed record BreakerSnapshot(string Provider, BreakerState State, int FailureCount, DateTimeOffset? OpenedAt, string? LastError, TimeSpan ResetTimeout);

/// <summary>
/// One Akka <see cref="CircuitBreaker"/> per external provider (plaid, stripe, quickbooks, xero),
/// configured from <c>clawkeeper.integrations.&lt;provider&gt;.breaker</c>. Every call to a provider
/// goes through <see cref="CallAsync{T}"/>; <c>circuit_breakers_closed</c> reads their state.
/// </summary>
public sealed class ProviderCircuitBreakers
{
    private readonly ConcurrentDictionary<string, Entry> _breakers = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public ProviderCircuitBreakers(IScheduler scheduler, IEnumerable<ProviderSettings> providers, TimeProvider? clock = null)
    {
        var time = _time = clock ?? TimeProvider.System;
        foreach (var provider in providers)
        {
            var breaker = CircuitBreaker.Create(scheduler, provider.MaxFailures, provider.CallTimeout, provider.ResetTimeout);
            var entry = new Entry(provider, breaker);
            breaker.OnOpen(() => entry.OpenedAt ??= time.GetUtcNow());
            breaker.OnClose(() => entry.OpenedAt = null);
            _breakers[provider.Provider] = entry;
        }
    }

    public Task<T> CallAsync<T>(string provider, Func<CancellationToken, Task<T>> call) =>
        Get(provider).WithCircuitBreaker(call);

    public CircuitBreaker Get(string provider) =>
        _breakers.TryGetValue(provider, out var entry)
            ? entry.Breaker
            : throw new ArgumentException($"no circuit breaker for provider '{provider}' (known: {string.Join(", ", _breakers.Keys)})", nameof(provider));

    public IReadOnlyList<BreakerSnapshot> Snapshot()
    {
        // Akka runs the OnOpen callback asynchronously: an open breaker seen before it ran is dated now.
        foreach (var entry in _breakers.Values)
            if (!entry.Breaker.IsClosed) entry.OpenedAt ??= _time.GetUtcNow();
        return _breakers.Values
            .OrderBy(e => e.Settings.Provider, StringComparer.Ordinal)
            .Select(e => new BreakerSnapshot(
                e.Settings.Provider,
                e.Breaker.IsOpen ? BreakerState.Open : e.Breaker.IsHalfOpen ? BreakerState.HalfOpen : BreakerState.Closed,
                (int)e.Breaker.CurrentFailureCount,
                e.OpenedAt,
                e.Breaker.LastCaughtException?.Message,
                e.Settings.ResetTimeout))
            .ToList();
    }

    private sealed class Entry(ProviderSettings settings, CircuitBreaker breaker)
    {
        public ProviderSettings Settings { get; } = settings;
        public CircuitBreaker Breaker { get; } = breaker;
        public DateTimeOffset? OpenedAt { get; set; }
    }
}
