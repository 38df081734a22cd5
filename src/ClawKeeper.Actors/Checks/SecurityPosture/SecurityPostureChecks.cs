using Npgsql;

namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>The four checks of the <c>security_posture</c> group, for the wiring in HeartbeatComponents.</summary>
public static class SecurityPostureChecks
{
    public static readonly IReadOnlyList<string> Ids = new[]
    {
        "tenant_isolation", "unauthorized_access_attempts", "api_keys_valid", "rate_limiters_functioning",
    };

    /// <param name="watermark">Where the security-event windows start; default: the last completed heartbeat.</param>
    /// <param name="hostedApi">The API hosted by this node, probed by rate_limiters_functioning when no URL is configured.</param>
    public static IReadOnlyList<IPlatformCheck> All(NpgsqlDataSource? platform, HttpClient http, SecurityPostureSettings settings, EventWatermark? watermark = null,
        IRateLimitProbeSource? hostedApi = null) =>
        new IPlatformCheck[]
        {
            new TenantIsolationCheck(platform, settings, watermark: watermark),
            new UnauthorizedAccessAttemptsCheck(platform, settings, watermark),
            new ApiKeysValidCheck(platform, settings),
            new RateLimitersFunctioningCheck(http, settings, hostedApi),
        };
}
