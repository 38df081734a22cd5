using Akka.Configuration;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Support;
using Xunit;

namespace ClawKeeper.Actors.Tests.Settings;

public class ClawKeeperSettingsSpec
{
    private static Config Shipped() =>
        ConfigurationFactory.ParseString(File.ReadAllText(RepositoryFiles.Path("hocon", "clawkeeper.conf")));

    private static InvalidSettingsException Invalid(string overrides) =>
        Assert.Throws<InvalidSettingsException>(() => ClawKeeperSettings.FromConfig(ConfigurationFactory.ParseString(overrides).WithFallback(Shipped())));

    [Fact]
    public void The_shipped_defaults_are_valid_and_match_the_protocol()
    {
        var settings = ClawKeeperSettings.FromConfig(Shipped());
        Assert.Equal(TimeSpan.FromHours(4), settings.Heartbeat.Interval);
        Assert.Equal(3, settings.Heartbeat.EscalateAfterFailures);
        Assert.Equal(new ClawKeeper.Actors.Heartbeat.RetryPolicy(TimeSpan.FromMinutes(1), 3), settings.Heartbeat.RetryPolicy);
        Assert.Equal(new ClawKeeper.Actors.Heartbeat.FlappingPolicy(0.25, 0.3, 20), settings.Heartbeat.FlappingPolicy);
        Assert.Equal(100, settings.TaskQueue.MaxPending);
        Assert.Equal(TimeSpan.FromHours(1), settings.TaskQueue.StuckAfter);
        Assert.Equal(0.05, settings.TaskQueue.MaxErrorRate);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.TaskQueue.MaxAverageLatency);
        Assert.Equal(TimeSpan.FromMilliseconds(100), settings.SystemHealth.ApiMaxResponseTime);
        Assert.Equal(
            new[] { ("cfo", 8), ("accounts-payable-lead", 15), ("accounts-receivable-lead", 15), ("reconciliation-lead", 12), ("compliance-lead", 10),
                    ("reporting-lead", 12), ("integration-lead", 12), ("data-etl-lead", 10), ("support-lead", 6) },
            settings.Orchestrators.Select(o => (o.Name, o.Workers)));
        Assert.Equal(new[] { "plaid", "stripe", "quickbooks", "xero" }, settings.Integrations.Select(i => i.Provider));
    }

    [Fact]
    public void The_demo_overlay_is_valid()
    {
        var demo = ConfigurationFactory.ParseString(File.ReadAllText(RepositoryFiles.Path("hocon", "demo.conf"))).WithFallback(Shipped());
        Assert.Equal(TimeSpan.FromSeconds(20), ClawKeeperSettings.FromConfig(demo).Heartbeat.Interval);
    }

    [Theory]
    [InlineData("clawkeeper.heartbeat.interval = banana", "clawkeeper.heartbeat.interval", "'banana'")]
    [InlineData("clawkeeper.heartbeat.interval = 0s", "clawkeeper.heartbeat.interval", "at least")]
    [InlineData("clawkeeper.heartbeat.group-timeout = 5h", "clawkeeper.heartbeat.group-timeout", "shorter than")]
    [InlineData("clawkeeper.checks.task-queue.max-pending = -3", "clawkeeper.checks.task-queue.max-pending", "at least 1")]
    [InlineData("clawkeeper.checks.task-queue.max-error-rate = 5", "clawkeeper.checks.task-queue.max-error-rate", "ratio")]
    [InlineData("clawkeeper.node.port = 70000", "clawkeeper.node.port", "between 0 and 65535")]
    [InlineData("clawkeeper.heartbeat.retry.interval = 5h", "clawkeeper.heartbeat.retry.interval", "shorter than")]
    [InlineData("clawkeeper.heartbeat.retry.max-attempts = 0", "clawkeeper.heartbeat.retry.max-attempts", "between 1 and 100")]
    [InlineData("clawkeeper.heartbeat.flapping.high = 1.5", "clawkeeper.heartbeat.flapping.high", "ratio")]
    [InlineData("clawkeeper.heartbeat.flapping { low = 0.5, high = 0.3 }", "clawkeeper.heartbeat.flapping.low", "not be above")]
    [InlineData("clawkeeper.heartbeat.flapping.window = 2", "clawkeeper.heartbeat.flapping.window", "between 3 and 100")]
    [InlineData("clawkeeper.logging.format = xml", "clawkeeper.logging.format", "text, json")]
    [InlineData("clawkeeper.checks.system-health.api-server.url = \"ftp://x\"", "clawkeeper.checks.system-health.api-server.url", "http(s)")]
    [InlineData("clawkeeper.orchestrators.cfo.workers = lots", "clawkeeper.orchestrators.cfo.workers", "whole number")]
    [InlineData("clawkeeper.orchestrators.chief-fun-officer { workers = 2 }", "clawkeeper.orchestrators.chief-fun-officer", "not a ClawKeeper orchestrator")]
    [InlineData("clawkeeper.node.seed-nodes = [\"10.0.0.1:4053\"]", "clawkeeper.node.seed-nodes", "Akka address")]
    public void A_bad_value_is_refused_with_its_key_named(string overrides, string key, string hint)
    {
        var problem = Assert.Single(Invalid(overrides).Problems);
        Assert.StartsWith(key + ":", problem);
        Assert.Contains(hint, problem);
    }

    [Fact]
    public void Every_bad_key_is_reported_at_once()
    {
        var error = Invalid("clawkeeper.heartbeat.interval = x\nclawkeeper.checks.task-queue.window = y");
        Assert.Equal(2, error.Problems.Count);
        Assert.Contains("clawkeeper.heartbeat.interval", error.Message);
        Assert.Contains("clawkeeper.checks.task-queue.window", error.Message);
    }

    [Fact]
    public void A_malformed_connection_string_is_refused_without_echoing_it()
    {
        var problem = Assert.Single(Invalid("clawkeeper.platform-db.connection-string = \"Host=db;Password=hunter2;Frobnicate=yes\"").Problems);
        Assert.StartsWith("clawkeeper.platform-db.connection-string:", problem);
        Assert.DoesNotContain("hunter2", problem);
    }

    [Fact]
    public void The_heartbeat_spool_defaults_beside_the_node_and_a_path_that_cannot_be_a_file_is_refused_by_key()
    {
        Assert.Equal(".clawkeeper/heartbeat-spool.db", ClawKeeperSettings.FromConfig(Shipped()).Heartbeat.SpoolPath);

        var empty = Assert.Single(Invalid("clawkeeper.heartbeat.spool-path = \"\"").Problems);
        Assert.StartsWith("clawkeeper.heartbeat.spool-path: must name a file", empty);

        var directory = Directory.CreateTempSubdirectory("clawkeeper-spool-setting-");
        try
        {
            var folder = Assert.Single(Invalid($"clawkeeper.heartbeat.spool-path = \"{directory.FullName}\"").Problems);
            Assert.StartsWith("clawkeeper.heartbeat.spool-path:", folder);
            Assert.Contains("is a directory", folder);
        }
        finally
        {
            directory.Delete();
        }
    }
}
