using Akka.Configuration;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Ops;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

public class OpsSettingsSpec
{
    private static (OpsSettings Settings, IReadOnlyList<string> Errors) Read(string hocon, TimeSpan? interval = null)
    {
        var r = new SettingsReader(ConfigurationFactory.ParseString(hocon));
        var settings = OpsSettings.Read(r, OpsSettings.DefaultPrefix, interval);
        return (settings, r.Errors);
    }

    [Fact]
    public void The_documented_block_parses_to_the_defaults()
    {
        var (settings, errors) = Read(OpsSettings.Hocon);
        Assert.Empty(errors);
        Assert.Equal(OpsSettings.Default, settings);
        Assert.Equal("127.0.0.1", settings.Hostname);
        Assert.Equal(8558, settings.Port);
        Assert.False(settings.TokenConfigured);
        Assert.Equal(TimeSpan.FromHours(8), settings.HeartbeatFreshWithin);
    }

    [Fact]
    public void Missing_keys_take_the_defaults_and_the_interval_comes_from_the_heartbeat_settings()
    {
        var (settings, errors) = Read("", TimeSpan.FromSeconds(20));
        Assert.Empty(errors);
        Assert.Equal(8558, settings.Port);
        Assert.Equal(TimeSpan.FromSeconds(40), settings.HeartbeatFreshWithin);
        Assert.Equal("127.0.0.1", settings.EffectiveBindHostname);
    }

    [Fact]
    public void Values_are_read_and_the_hash_is_lower_cased()
    {
        var hash = new string('A', 64);
        var (settings, errors) = Read($$"""
            clawkeeper.ops { hostname = "ops.example", bind-hostname = "0.0.0.0", port = 0, token-sha256 = "{{hash}}", ask-timeout = 500ms }
            """);
        Assert.Empty(errors);
        Assert.Equal("ops.example", settings.Hostname);
        Assert.Equal("0.0.0.0", settings.EffectiveBindHostname);
        Assert.Equal(0, settings.Port);
        Assert.Equal(new string('a', 64), settings.TokenSha256);
        Assert.True(settings.TokenConfigured);
        Assert.Equal(TimeSpan.FromMilliseconds(500), settings.AskTimeout);
    }

    [Fact]
    public void Every_bad_key_is_named_and_a_pasted_token_is_not_echoed()
    {
        var (settings, errors) = Read("""
            clawkeeper.ops { hostname = "", port = 70000, token-sha256 = "my-secret-token", ask-timeout = soon }
            """);
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.ops.hostname:"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.ops.port: must be between 0 and 65535"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.ops.token-sha256: must be the lower-hex SHA-256"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.ops.ask-timeout:"));
        Assert.DoesNotContain(errors, e => e.Contains("my-secret-token"));
        Assert.False(settings.TokenConfigured);
    }

    [Fact]
    public void The_authorization_accepts_only_the_token_whose_hash_is_configured()
    {
        var authorization = new OpsAuthorization(OpsTestHost.TokenSha256);
        Assert.Null(authorization.WhyRefused("Bearer " + OpsTestHost.Token));
        Assert.Null(authorization.WhyRefused("bearer  " + OpsTestHost.Token + " "));
        Assert.Equal("no Authorization header", authorization.WhyRefused(null));
        Assert.Equal("the Authorization header is not a Bearer token", authorization.WhyRefused("Basic b3BzOnRva2Vu"));
        Assert.Equal("the bearer token is empty", authorization.WhyRefused("Bearer "));
        Assert.Equal("the bearer token is not valid", authorization.WhyRefused("Bearer " + OpsTestHost.Token + "x"));
        // The configured value is the hash: presenting the hash itself is not the token.
        Assert.Equal("the bearer token is not valid", authorization.WhyRefused("Bearer " + OpsTestHost.TokenSha256));
        Assert.StartsWith("no ops token is configured", new OpsAuthorization("").WhyRefused("Bearer " + OpsTestHost.Token));
    }
}
