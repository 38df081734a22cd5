using ClawKeeper.Actors.Integrations;
using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.IntegrationHealth;

/// <summary>The four checks of the <c>integration_health</c> group, for the wiring in HeartbeatComponents.</summary>
public static class IntegrationHealthChecks
{
    public static readonly IReadOnlyList<string> Ids = ProviderSettings.KnownProviders.Select(ProviderIntegrationCheck.CheckId).ToList();

    /// <param name="breakers">The node's breakers — the same instance the fleet calls providers through.</param>
    public static IReadOnlyList<IPlatformCheck> All(NpgsqlDataSource? platform, HttpClient http, ProviderCircuitBreakers breakers, IntegrationHealthSettings settings) =>
        ProviderSettings.KnownProviders
            .Select(provider => (IPlatformCheck)new ProviderIntegrationCheck(provider, platform, http, breakers, settings))
            .ToList();
}
