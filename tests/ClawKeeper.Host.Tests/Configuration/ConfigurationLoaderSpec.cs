using System.Collections;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Configuration;
using Xunit;

namespace ClawKeeper.Host.Tests.Configuration;

/// <summary>The environment wins over every file; lists come comma-separated.</summary>
public class ConfigurationLoaderSpec
{
    private static ClawKeeperSettings Load(IDictionary environment) =>
        ClawKeeperSettings.FromConfig(ConfigurationLoader.Load(Array.Empty<string>(), null, environment));

    [Fact]
    public void Environment_variables_override_the_shipped_files()
    {
        var settings = Load(new Hashtable
        {
            ["CLAWKEEPER_PLATFORM_DB"] = "Host=db.internal;Database=clawkeeper;Username=monitor;Password=\"p@ss;wo\"\"rd\"",
            ["CLAWKEEPER_NODE_HOSTNAME"] = "node2",
            ["CLAWKEEPER_NODE_PORT"] = "4054",
            ["CLAWKEEPER_SEED_NODES"] = "akka.tcp://clawkeeper@node1:4053, akka.tcp://clawkeeper@node2:4053",
            ["CLAWKEEPER_SMTP_HOST"] = "smtp",
            ["CLAWKEEPER_SMTP_PORT"] = "1025",
            ["CLAWKEEPER_SMTP_TLS"] = "none",
            ["CLAWKEEPER_ALERT_EMAIL_SUPER_ADMIN"] = "root@example.test,ops@example.test",
        });
        Assert.Equal("Host=db.internal;Database=clawkeeper;Username=monitor;Password=\"p@ss;wo\"\"rd\"", settings.PlatformConnectionString);
        Assert.Equal("p@ss;wo\"rd", new Npgsql.NpgsqlConnectionStringBuilder(settings.PlatformConnectionString).Password); // HOCON quoting kept every character
        Assert.Equal(("node2", 4054), (settings.Node.Hostname, settings.Node.Port));
        Assert.Equal(new[] { "akka.tcp://clawkeeper@node1:4053", "akka.tcp://clawkeeper@node2:4053" }, settings.Node.SeedNodes);
        Assert.Equal(("smtp", 1025), (settings.Alerts.Smtp!.Host, settings.Alerts.Smtp.Port));
        Assert.Equal(new[] { "root@example.test", "ops@example.test" }, settings.Alerts.Audiences["super_admin"].EmailTo);
    }

    [Fact]
    public void A_bad_value_from_the_environment_is_named_by_its_key()
    {
        var error = Assert.Throws<InvalidSettingsException>(() => Load(new Hashtable { ["CLAWKEEPER_NODE_PORT"] = "eighty" }));
        Assert.Contains("clawkeeper.node.port: must be a whole number; got 'eighty'", error.Message);
    }
}
