using Akka.Configuration;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Support;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.SecurityPosture;

public class SecurityPostureSettingsSpec
{
    private static (SecurityPostureSettings Settings, IReadOnlyList<string> Errors) Read(string hocon, string prefix = SecurityPostureSettings.DefaultPrefix)
    {
        var reader = new SettingsReader(ConfigurationFactory.ParseString(hocon));
        var settings = SecurityPostureSettings.Read(reader, prefix);
        return (settings, reader.Errors);
    }

    [Fact]
    public void The_example_snippet_parses_to_the_defaults_and_no_key_gives_the_defaults()
    {
        var example = File.ReadAllText(RepositoryFiles.Path("src", "ClawKeeper.Actors", "Checks", "SecurityPosture", "security-posture.conf.example"));
        var (fromExample, errors) = Read(example, "security-posture");
        Assert.Empty(errors);
        Assert.Equal(SecurityPostureSettings.Defaults, fromExample);
        Assert.Equal(TimeSpan.FromDays(7), fromExample.KeyExpiryWarning);

        var (empty, none) = Read("");
        Assert.Empty(none);
        Assert.Equal(SecurityPostureSettings.Defaults, empty);
    }

    [Fact]
    public void Configured_values_are_read()
    {
        var (settings, errors) = Read("""
            clawkeeper.checks.security-posture {
              timeout = 20s, first-run-look-back = 30m, application-role = tenant_app, isolation-pairs-per-round = 12
              key-expiry-warning = 14d, sample-size = 3
              rate-limiter { url = "https://api.example.com/v1/ping", limit = 100, burst-timeout = 2s }
            }
            """);
        Assert.Empty(errors);
        Assert.Equal(new SecurityPostureSettings(TimeSpan.FromSeconds(20), TimeSpan.FromMinutes(30), "tenant_app", 12, TimeSpan.FromDays(14),
            new Uri("https://api.example.com/v1/ping"), 100, TimeSpan.FromSeconds(2), 3), settings);
    }

    [Theory]
    [InlineData("timeout = soon", "timeout", "duration")]
    [InlineData("application-role = \"app; drop table tenants\"", "application-role", "PostgreSQL role")]
    [InlineData("isolation-pairs-per-round = 0", "isolation-pairs-per-round", "between 1 and")]
    [InlineData("rate-limiter.limit = 5000", "rate-limiter.limit", "between 1 and 999")]
    [InlineData("rate-limiter.url = \"ftp://api\"", "rate-limiter.url", "http(s)")]
    [InlineData("rate-limiter.burst-timeout = 10m", "rate-limiter.burst-timeout", "at most")]
    public void A_bad_value_is_reported_with_its_key(string line, string key, string hint)
    {
        var (settings, errors) = Read($"clawkeeper.checks.security-posture {{ {line} }}");
        var error = Assert.Single(errors);
        Assert.StartsWith($"clawkeeper.checks.security-posture.{key}:", error);
        Assert.Contains(hint, error);
        Assert.NotNull(settings); // the default stands in, so every problem can be listed at once
    }
}
