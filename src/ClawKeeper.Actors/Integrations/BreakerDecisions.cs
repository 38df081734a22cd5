using System.Collections.Immutable;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Actors.Integrations;

/// <summary>A provider's breaker seen open: since when (persisted, so a restart does not reset the clock) and how many re-checks found it still open.</summary>
public sealed record BreakerObservation(string Provider, DateTimeOffset FirstSeenOpenAt, int Attempts, TimeSpan ResetTimeout);

/// <summary>What one round made of the breakers.</summary>
public sealed record BreakerAssessment(
    ImmutableDictionary<string, BreakerObservation> Observations,
    IReadOnlyList<ActionReport> Actions,
    IReadOnlyList<AlertReport> Alerts,
    TimeSpan? ReprobeAfter);

/// <summary>
/// The protocol's action for an open breaker, pure: wait for the breaker's reset timeout, let
/// the half-open trial call through (an extra heartbeat re-checks), and escalate to super_admin
/// once the breaker is still open after the configured number of attempts.
/// </summary>
public static class BreakerDecisions
{
    public static string DedupKey(string provider) => $"breaker:integration_health/{provider}:super_admin";

    public static BreakerAssessment Assess(
        ImmutableDictionary<string, BreakerObservation> previous,
        IReadOnlyList<BreakerSnapshot> breakers,
        ImmutableHashSet<string> openIncidents,
        DateTimeOffset now,
        int escalateAfterAttempts)
    {
        var next = ImmutableDictionary.CreateBuilder<string, BreakerObservation>();
        var actions = new List<ActionReport>();
        var alerts = new List<AlertReport>();
        foreach (var breaker in breakers)
        {
            if (breaker.State == BreakerState.Closed)
            {
                if (previous.TryGetValue(breaker.Provider, out var was))
                    actions.Add(new ActionReport("breaker_closed", $"{breaker.Provider} breaker closed again after {was.Attempts} re-check(s)", "recovered"));
                continue;
            }
            var observation = previous.TryGetValue(breaker.Provider, out var seen)
                ? seen with { Attempts = seen.Attempts + 1, ResetTimeout = breaker.ResetTimeout }
                : new BreakerObservation(breaker.Provider, breaker.OpenedAt ?? now, 1, breaker.ResetTimeout);
            next[breaker.Provider] = observation;
            var openFor = now - observation.FirstSeenOpenAt;
            if (observation.Attempts >= escalateAfterAttempts)
            {
                var key = DedupKey(breaker.Provider);
                if (!openIncidents.Contains(key))
                    alerts.Add(new AlertReport("super_admin", new[] { "email", "discord" }, key, "critical",
                        $"the {breaker.Provider} circuit breaker is still {breaker.State.ToString().ToLowerInvariant()} after {observation.Attempts} checks " +
                        $"(open since {observation.FirstSeenOpenAt:u}, {openFor.TotalMinutes:0} min){(breaker.LastError is { } e ? $"; last error: {e}" : "")}",
                        "recorded"));
                actions.Add(new ActionReport("breaker_open", $"{breaker.Provider} open since {observation.FirstSeenOpenAt:u} ({observation.Attempts} checks)", "escalated to super_admin"));
            }
            else
            {
                actions.Add(new ActionReport("breaker_open", $"{breaker.Provider} open since {observation.FirstSeenOpenAt:u} ({observation.Attempts} of {escalateAfterAttempts} checks)",
                    $"waiting {breaker.ResetTimeout.TotalSeconds:0} s for the reset timeout, then the half-open trial call is re-checked"));
            }
        }
        var observations = next.ToImmutable();
        TimeSpan? reprobe = observations.IsEmpty ? null : observations.Values.Max(o => o.ResetTimeout) + TimeSpan.FromSeconds(1);
        return new BreakerAssessment(observations, actions, alerts, reprobe);
    }
}
