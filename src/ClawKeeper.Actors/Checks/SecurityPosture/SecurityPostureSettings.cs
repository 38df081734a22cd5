using System.Text.RegularExpressions;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>
/// Settings of the <c>security_posture</c> group, under <c>clawkeeper.checks.security-posture</c>
/// (defaults and comments: <c>security-posture.conf.example</c> next to this file).
/// </summary>
/// <param name="Timeout">Bound of each database check of the group (tenant_isolation, unauthorized_access_attempts, api_keys_valid).</param>
/// <param name="FirstRunLookBack">Event window when no heartbeat has completed yet (no watermark to start from).</param>
/// <param name="ApplicationRole">The role the application connects as; the isolation probe acts as it (<c>SET LOCAL ROLE</c>).</param>
/// <param name="IsolationPairsPerRound">Ordered (viewer, target) tenant pairs probed per heartbeat; the pairs rotate so every pair is covered.</param>
/// <param name="KeyExpiryWarning">An active API key expiring within this window warns.</param>
/// <param name="RateLimitedUrl">Full URL of a rate-limited endpoint of the ClawKeeper API; null = rate_limiters_functioning is skipped.</param>
/// <param name="RateLimit">Requests the limiter admits per window; the burst sends one more.</param>
/// <param name="BurstTimeout">Bound of the whole burst (every request of it).</param>
/// <param name="SampleSize">How many items (tables, tenants, keys) a detail lists before "and N more".</param>
public sealed record SecurityPostureSettings(
    TimeSpan Timeout,
    TimeSpan FirstRunLookBack,
    string ApplicationRole,
    int IsolationPairsPerRound,
    TimeSpan KeyExpiryWarning,
    Uri? RateLimitedUrl,
    int RateLimit,
    TimeSpan BurstTimeout,
    int SampleSize)
{
    public const string DefaultPrefix = "clawkeeper.checks.security-posture";

    /// <summary>The largest burst the check will ever send (limit + 1).</summary>
    public const int MaxRateLimit = 1000;

    public static readonly SecurityPostureSettings Defaults = new(
        Timeout: TimeSpan.FromSeconds(10),
        FirstRunLookBack: TimeSpan.FromHours(4),
        ApplicationRole: "clawkeeper_app",
        IsolationPairsPerRound: 4,
        KeyExpiryWarning: TimeSpan.FromDays(7),
        RateLimitedUrl: null,
        RateLimit: 60,
        BurstTimeout: TimeSpan.FromSeconds(5),
        SampleSize: 10);

    /// <summary>
    /// Reads and validates the keys under <paramref name="prefix"/>; problems go to <paramref name="r"/>
    /// (each naming its key) and the default of a bad key is used, so the caller can list all problems at once.
    /// </summary>
    public static SecurityPostureSettings Read(SettingsReader r, string prefix = DefaultPrefix)
    {
        var d = Defaults;
        var role = r.String($"{prefix}.application-role", d.ApplicationRole);
        if (!Regex.IsMatch(role, "^[A-Za-z_][A-Za-z0-9_$]{0,62}$"))
        {
            r.AddError($"{prefix}.application-role", $"must name a PostgreSQL role (letters, digits, _; at most 63 characters); got '{role}'");
            role = d.ApplicationRole;
        }

        var settings = new SecurityPostureSettings(
            Timeout: r.Duration($"{prefix}.timeout", d.Timeout, min: TimeSpan.FromMilliseconds(100)),
            FirstRunLookBack: r.Duration($"{prefix}.first-run-look-back", d.FirstRunLookBack, min: TimeSpan.FromSeconds(1)),
            ApplicationRole: role,
            IsolationPairsPerRound: r.Int($"{prefix}.isolation-pairs-per-round", d.IsolationPairsPerRound, 1, 10_000),
            KeyExpiryWarning: r.Duration($"{prefix}.key-expiry-warning", d.KeyExpiryWarning, min: TimeSpan.Zero),
            RateLimitedUrl: r.AbsoluteHttpUrl($"{prefix}.rate-limiter.url"),
            RateLimit: r.Int($"{prefix}.rate-limiter.limit", d.RateLimit, 1, MaxRateLimit - 1),
            BurstTimeout: r.Duration($"{prefix}.rate-limiter.burst-timeout", d.BurstTimeout, min: TimeSpan.FromMilliseconds(10), max: TimeSpan.FromMinutes(1)),
            SampleSize: r.Int($"{prefix}.sample-size", d.SampleSize, 1, 100));
        return settings;
    }
}
