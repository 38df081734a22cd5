using Akka.Configuration;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Api;
using ClawKeeper.Host.Configuration;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

public class ApiSettingsSpec
{
    private static (ApiSettings Settings, IReadOnlyList<string> Errors) Read(string hocon)
    {
        var r = new SettingsReader(ConfigurationFactory.ParseString(hocon));
        return (ApiSettings.Read(r), r.Errors);
    }

    [Fact]
    public void The_shipped_configuration_reads_without_problems_and_matches_the_defaults()
    {
        var config = ConfigurationLoader.Load(Array.Empty<string>(), null, new Dictionary<string, string>());
        Assert.Equal(ApiSettings.Defaults, ApiSettings.FromConfig(config));
        var demo = ConfigurationLoader.Load(new[] { "demo.conf" }, null, new Dictionary<string, string>());
        Assert.Equal(0, ApiSettings.FromConfig(demo).Port);
    }

    [Fact]
    public void Environment_overrides_the_port_and_the_hostname()
    {
        var config = ConfigurationLoader.Load(Array.Empty<string>(), null,
            new Dictionary<string, string> { ["CLAWKEEPER_API_PORT"] = "6123", ["CLAWKEEPER_API_HOSTNAME"] = "0.0.0.0" });
        var api = ApiSettings.FromConfig(config);
        Assert.Equal(6123, api.Port);
        Assert.Equal("0.0.0.0", api.Hostname);
    }

    [Fact]
    public void Bad_values_are_reported_with_their_keys()
    {
        var (_, errors) = Read("""
            clawkeeper.api {
              hostname = "api.example.com"
              port = 70000
              rate-limit { permits = 0, window = 10ms }
              submission-buffer { path = "", capacity = 0 }
              database { reconnect-min-backoff = 10s, reconnect-max-backoff = 1s, command-timeout = soon }
            }
            """);
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.hostname: must be an IP address"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.port: must be between 0 and 65535"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.rate-limit.permits: must be between 1 and 999"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.rate-limit.window: must be at least"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.submission-buffer.path: must name a file"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.submission-buffer.capacity:"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.database.reconnect-max-backoff: must be at least reconnect-min-backoff"));
        Assert.Contains(errors, e => e.StartsWith("clawkeeper.api.database.command-timeout: must be a duration"));
        Assert.Throws<InvalidSettingsException>(() => ApiSettings.FromConfig(ConfigurationFactory.ParseString("clawkeeper.api.port = -1")));
    }
}
