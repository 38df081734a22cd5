using System.Text.RegularExpressions;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Checks.IntegrationHealth;

/// <summary>
/// Where a provider answers. <paramref name="BaseUrl"/> null = not configured (QuickBooks and Xero
/// are then skipped; Plaid and Stripe, <paramref name="Required"/>, are an error).
/// <paramref name="HealthPath"/> is relative to the base URL (<c>https://api.x.com/v1</c> + <c>status</c> →
/// <c>https://api.x.com/v1/status</c>); empty = GET the base URL itself.
/// <paramref name="CredentialEnvironmentVariable"/> names an environment variable whose value is sent as
/// <c>Authorization: Bearer …</c> (read at call time, never logged); null = no credential sent.
/// </summary>
public sealed record ProviderEndpoint(string Provider, Uri? BaseUrl, string? HealthPath, bool Required, string? CredentialEnvironmentVariable = null)
{
    public bool Configured => BaseUrl is not null;

    /// <summary>The URL the reachability probe GETs; null when not configured.</summary>
    public Uri? HealthUrl
    {
        get
        {
            if (BaseUrl is null) return null;
            var root = BaseUrl.AbsoluteUri.EndsWith('/') ? BaseUrl : new Uri(BaseUrl.AbsoluteUri + "/");
            var path = (HealthPath ?? "").TrimStart('/');
            return path.Length == 0 ? BaseUrl : new Uri(root, path);
        }
    }
}

/// <summary>
/// Settings of the <c>integration_health</c> group: the check keys under
/// <c>clawkeeper.checks.integration-health</c>, the provider endpoints next to their breakers under
/// <c>clawkeeper.integrations.&lt;provider&gt;</c> (defaults and comments: <c>integration-health.conf.example</c>).
/// </summary>
/// <param name="Timeout">Deadline of one reachability call (a provider that has not answered by then fails the check and counts as a breaker failure).</param>
/// <param name="MaxSyncAge">The latest sync of an active connection must be younger than this.</param>
/// <param name="Providers">plaid, stripe, quickbooks, xero — in that order.</param>
/// <param name="SampleSize">How many connections a detail lists before "and N more".</param>
public sealed record IntegrationHealthSettings(TimeSpan Timeout, TimeSpan MaxSyncAge, IReadOnlyList<ProviderEndpoint> Providers, int SampleSize = 10, int EscalateOpenBreakerAfterAttempts = 3)
{
    public const string DefaultPrefix = "clawkeeper.checks.integration-health";
    public const string DefaultIntegrationsPrefix = "clawkeeper.integrations";

    /// <summary>Plaid and Stripe are required by the protocol; QuickBooks and Xero are optional.</summary>
    public static readonly IReadOnlyList<string> RequiredByDefault = new[] { "plaid", "stripe" };

    public static readonly IntegrationHealthSettings Defaults = new(
        TimeSpan.FromSeconds(5), TimeSpan.FromHours(24),
        ProviderSettings.KnownProviders.Select(p => new ProviderEndpoint(p, null, null, RequiredByDefault.Contains(p))).ToList());

    public ProviderEndpoint Endpoint(string provider) =>
        Providers.FirstOrDefault(p => p.Provider == provider) ?? new ProviderEndpoint(provider, null, null, RequiredByDefault.Contains(provider));

    /// <summary>
    /// Reads and validates; problems go to <paramref name="r"/> (each naming its key) and the default of a
    /// bad key is used, so the caller can list every problem at once.
    /// </summary>
    public static IntegrationHealthSettings Read(SettingsReader r, string prefix = DefaultPrefix, string integrationsPrefix = DefaultIntegrationsPrefix)
    {
        var d = Defaults;
        var providers = new List<ProviderEndpoint>();
        foreach (var provider in ProviderSettings.KnownProviders)
        {
            var k = $"{integrationsPrefix}.{provider}";
            var baseUrl = r.AbsoluteHttpUrl($"{k}.base-url");
            var healthPath = r.String($"{k}.health-path").Trim();
            if (healthPath.Contains("://", StringComparison.Ordinal) || healthPath.StartsWith("//", StringComparison.Ordinal) || healthPath.Contains('\\'))
            {
                r.AddError($"{k}.health-path", $"must be a path relative to base-url, such as \"v1/status\"; got '{healthPath}'");
                healthPath = "";
            }
            var credential = r.String($"{k}.credential-env").Trim();
            if (credential.Length > 0 && !Regex.IsMatch(credential, "^[A-Za-z_][A-Za-z0-9_]*$"))
            {
                r.AddError($"{k}.credential-env", $"must name an environment variable (letters, digits, _); got '{credential}'");
                credential = "";
            }
            var required = r.Boolean($"{k}.required", RequiredByDefault.Contains(provider));
            providers.Add(new ProviderEndpoint(provider, baseUrl, healthPath.Length == 0 ? null : healthPath, required, credential.Length == 0 ? null : credential));
        }

        return new IntegrationHealthSettings(
            Timeout: r.Duration($"{prefix}.timeout", d.Timeout, min: TimeSpan.FromMilliseconds(10), max: TimeSpan.FromMinutes(5)),
            MaxSyncAge: r.Duration($"{prefix}.max-sync-age", d.MaxSyncAge, min: TimeSpan.FromSeconds(1)),
            Providers: providers,
            SampleSize: r.Int($"{prefix}.sample-size", d.SampleSize, 1, 100),
            EscalateOpenBreakerAfterAttempts: r.Int($"{prefix}.escalate-open-breaker-after", d.EscalateOpenBreakerAfterAttempts, 1, 100));
    }
}
