using Akka.Configuration;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Support;
using ClawKeeper.Platform.Tasks;
using Xunit;

namespace ClawKeeper.Actors.Tests.Orchestrators;

public sealed class FleetSettingsSpec
{
    private static (FleetSettings Settings, IReadOnlyList<string> Errors) Read(string hocon, string prefix = FleetSettings.DefaultPrefix)
    {
        var reader = new SettingsReader(ConfigurationFactory.ParseString(hocon));
        return (FleetSettings.Read(reader, prefix), reader.Errors);
    }

    [Fact]
    public void The_example_snippet_and_an_empty_config_both_give_the_defaults()
    {
        var example = File.ReadAllText(RepositoryFiles.Path("src", "ClawKeeper.Actors", "Orchestrators", "fleet.conf.example"));
        var (fromExample, errors) = Read(example, "fleet");
        Assert.Empty(errors);
        Assert.Equal(FleetSettings.Default, fromExample);

        var (empty, none) = Read("");
        Assert.Empty(none);
        Assert.Equal(FleetSettings.Default, empty);
        Assert.IsType<SimulatedTaskExecutor>(empty.Executor.Create());
    }

    [Fact]
    public void Configured_values_are_read()
    {
        var (settings, errors) = Read("""
            clawkeeper.fleet {
              claim-tasks = off
              poll-interval = 250ms
              max-claim-batch = 4
              release-grace = 0s
              orphan-after = 0s
              orphan-sweep-interval = 5s
              retry { max-attempts = 5, base-delay = 1s, max-delay = 1m, jitter = 0 }
              database-backoff { min = 100ms, max = 5s }
              supervision { crash-window = 10m, restarts-before-backoff = 0, escalate-after = 2, backoff-min = 5s, backoff-max = 5m }
              executor { kind = instant, simulated { seed = 7, duration-min = 0s, duration-max = 0s, failure-ratio = 0.5, cost-per-1k-tokens-max = 0.5 } }
            }
            """);
        Assert.Empty(errors);
        Assert.False(settings.ClaimTasks);
        Assert.Equal((TimeSpan.FromMilliseconds(250), 4, TimeSpan.Zero), (settings.PollInterval, settings.MaxClaimBatch, settings.ReleaseGrace));
        Assert.Equal((TimeSpan.Zero, TimeSpan.FromSeconds(5)), (settings.OrphanAfter, settings.OrphanSweepInterval));
        Assert.Equal(new TaskRetryPolicy(5, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1), 0), settings.Retry);
        Assert.Equal((TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5)), (settings.DatabaseBackoffMin, settings.DatabaseBackoffMax));
        Assert.Equal(new FleetSupervisionSettings(TimeSpan.FromMinutes(10), 0, 2, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5)), settings.Supervision);
        Assert.Equal("instant", settings.Executor.Kind);
        Assert.IsType<InstantTaskExecutor>(settings.Executor.Create());
        Assert.Equal((7L, TimeSpan.Zero, 0.5, 0.5m), (settings.Executor.Simulated.Seed, settings.Executor.Simulated.MaxDuration, settings.Executor.Simulated.FailureRatio, settings.Executor.Simulated.MaxCostPer1kTokens));
    }

    [Theory]
    [InlineData("clawkeeper.fleet.poll-interval = soon", "clawkeeper.fleet.poll-interval", "duration")]
    [InlineData("clawkeeper.fleet.claim-tasks = maybe", "clawkeeper.fleet.claim-tasks", "true or false")]
    [InlineData("clawkeeper.fleet.retry.max-attempts = 0", "clawkeeper.fleet.retry.max-attempts", "between 1 and 100")]
    [InlineData("clawkeeper.fleet.retry { base-delay = 1m, max-delay = 1s }", "clawkeeper.fleet.retry.max-delay", "at least")]
    [InlineData("clawkeeper.fleet.database-backoff { min = 10s, max = 1s }", "clawkeeper.fleet.database-backoff.max", "at least")]
    [InlineData("clawkeeper.fleet.supervision.escalate-after = -1", "clawkeeper.fleet.supervision.escalate-after", "between 1 and 1000")]
    [InlineData("clawkeeper.fleet.executor.kind = gpt", "clawkeeper.fleet.executor.kind", "simulated, instant")]
    [InlineData("clawkeeper.fleet.executor.simulated.cost-per-1k-tokens-min = cheap", "clawkeeper.fleet.executor.simulated.cost-per-1k-tokens-min", "amount")]
    [InlineData("clawkeeper.fleet.executor.simulated.failure-ratio = 2", "clawkeeper.fleet.executor.simulated.failure-ratio", "ratio")]
    [InlineData("clawkeeper.fleet.executor.simulated { tokens-min = 10, tokens-max = 5 }", "clawkeeper.fleet.executor.simulated", "tokens")]
    [InlineData("clawkeeper.fleet { task-timeout = 10m, orphan-after = 10m }", "clawkeeper.fleet.orphan-after", "longer than task-timeout")]
    [InlineData("clawkeeper.fleet.executor.simulated.seed = x", "clawkeeper.fleet.executor.simulated.seed", "whole number")]
    public void A_bad_value_is_reported_with_its_key(string hocon, string key, string hint)
    {
        var (settings, errors) = Read(hocon);
        var error = Assert.Single(errors);
        Assert.StartsWith(key + ":", error);
        Assert.Contains(hint, error);
        Assert.NotNull(settings);
    }
}
