using Akka.Configuration;
using ClawKeeper.Actors.Checks.IntegrationHealth;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Support;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.IntegrationHealth;

public class IntegrationHealthSettingsSpec
{
    private static (IntegrationHealthSettings Settings, IReadOnlyList<string> Errors) Read(string hocon, string prefix = IntegrationHealthSettings.DefaultPrefix, string integrations = IntegrationHealthSettings.DefaultIntegrationsPrefix)
    {
        var reader = new SettingsReader(ConfigurationFactory.ParseString(hocon));
        return (IntegrationHealthSettings.Read(reader, prefix, integrations), reader.Errors);
    }

    private static void AssertDefaults(IntegrationHealthSettings settings)
    {
        Assert.Equal(TimeSpan.FromSeconds(5), settings.Timeout);
        Assert.Equal(TimeSpan.FromHours(24), settings.MaxSyncAge);
        Assert.Equal(10, settings.SampleSize);
        Assert.Equal(
            new[] { ("plaid", true), ("stripe", true), ("quickbooks", false), ("xero", false) },
            settings.Providers.Select(p => (p.Provider, p.Required)));
        Assert.All(settings.Providers, p =>
        {
            Assert.False(p.Configured);
            Assert.Null(p.HealthPath);
            Assert.Null(p.CredentialEnvironmentVariable);
        });
    }

    [Fact]
    public void The_example_snippet_parses_to_the_defaults_and_no_key_gives_the_defaults()
    {
        var example = File.ReadAllText(RepositoryFiles.Path("src", "ClawKeeper.Actors", "Checks", "IntegrationHealth", "integration-health.conf.example"));
        var (fromExample, errors) = Read(example, "integration-health", "integrations");
        Assert.Empty(errors);
        AssertDefaults(fromExample);

        // The breaker keys of the example are the ones ClawKeeperSettings reads.
        var breaker = ConfigurationFactory.ParseString(example).GetConfig("integrations.xero.breaker");
        Assert.Equal(5, breaker.GetInt("max-failures"));
        Assert.Equal(TimeSpan.FromSeconds(60), breaker.GetTimeSpan("reset-timeout"));

        var (empty, none) = Read("");
        Assert.Empty(none);
        AssertDefaults(empty);
    }

    [Fact]
    public void Configured_endpoints_are_read_and_the_health_url_is_relative_to_the_base_url()
    {
        var (settings, errors) = Read("""
            clawkeeper.checks.integration-health { timeout = 2s, max-sync-age = 6h, sample-size = 4 }
            clawkeeper.integrations {
              plaid { base-url = "https://production.plaid.com", health-path = "/institutions/get" }
              stripe { base-url = "https://api.stripe.com/v1", health-path = "balance", credential-env = STRIPE_SECRET_KEY }
              xero { base-url = "https://api.xero.com/", required = on }
            }
            """);
        Assert.Empty(errors);
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromHours(6), 4), (settings.Timeout, settings.MaxSyncAge, settings.SampleSize));
        Assert.Equal(new Uri("https://production.plaid.com/institutions/get"), settings.Endpoint("plaid").HealthUrl);
        Assert.Equal(new Uri("https://api.stripe.com/v1/balance"), settings.Endpoint("stripe").HealthUrl);
        Assert.Equal("STRIPE_SECRET_KEY", settings.Endpoint("stripe").CredentialEnvironmentVariable);
        Assert.Equal(new Uri("https://api.xero.com/"), settings.Endpoint("xero").HealthUrl);
        Assert.True(settings.Endpoint("xero").Required);
        Assert.False(settings.Endpoint("quickbooks").Configured);
    }

    [Theory]
    [InlineData("clawkeeper.integrations.plaid.base-url = \"plaid.com\"", "clawkeeper.integrations.plaid.base-url", "http(s)")]
    [InlineData("clawkeeper.integrations.stripe.health-path = \"https://evil.example/x\"", "clawkeeper.integrations.stripe.health-path", "relative")]
    [InlineData("clawkeeper.integrations.xero.credential-env = \"XERO-KEY\"", "clawkeeper.integrations.xero.credential-env", "environment variable")]
    [InlineData("clawkeeper.integrations.quickbooks.required = maybe", "clawkeeper.integrations.quickbooks.required", "true or false")]
    [InlineData("clawkeeper.checks.integration-health.max-sync-age = later", "clawkeeper.checks.integration-health.max-sync-age", "duration")]
    public void A_bad_value_is_reported_with_its_key(string hocon, string key, string hint)
    {
        var (_, errors) = Read(hocon);
        var error = Assert.Single(errors);
        Assert.StartsWith(key + ":", error);
        Assert.Contains(hint, error);
    }
}
