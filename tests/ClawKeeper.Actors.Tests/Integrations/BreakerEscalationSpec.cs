using System.Collections.Immutable;
using Akka.Actor;
using Akka.TestKit;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.IntegrationHealth;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Integrations;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Support;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Integrations;

/// <summary>An open breaker: wait for its reset timeout, re-check through the half-open trial, escalate if it stays open.</summary>
public class BreakerEscalationSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly HttpClient Http = new();
    private static readonly DateTimeOffset T0 = new(2026, 11, 28, 4, 0, 0, TimeSpan.Zero);

    public BreakerEscalationSpec(ITestOutputHelper output) : base("""
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        akka.logger-formatter = "Akka.Logger.Serilog.SerilogLogMessageFormatter, Akka.Logger.Serilog"
        """, output)
    {
    }

    [Fact]
    public void Attempts_count_per_provider_from_the_first_time_it_was_seen_open_and_escalate_once()
    {
        BreakerSnapshot Open(DateTimeOffset since) => new("plaid", BreakerState.Open, 5, since, "connection refused", TimeSpan.FromSeconds(60));
        var first = BreakerDecisions.Assess(ImmutableDictionary<string, BreakerObservation>.Empty, new[] { Open(T0) }, ImmutableHashSet<string>.Empty, T0, 3);
        Assert.Equal(1, first.Observations["plaid"].Attempts);
        Assert.Empty(first.Alerts);
        Assert.Equal(TimeSpan.FromSeconds(61), first.ReprobeAfter);
        Assert.Contains("waiting 60 s for the reset timeout", Assert.Single(first.Actions).Outcome);

        // A half-open breaker that failed its trial is open again with a new OpenedAt: the first sighting stays.
        var second = BreakerDecisions.Assess(first.Observations, new[] { Open(T0.AddMinutes(1)) }, ImmutableHashSet<string>.Empty, T0.AddMinutes(1), 3);
        var third = BreakerDecisions.Assess(second.Observations, new[] { Open(T0.AddMinutes(2)) }, ImmutableHashSet<string>.Empty, T0.AddMinutes(2), 3);
        Assert.Equal(T0, third.Observations["plaid"].FirstSeenOpenAt);
        var alert = Assert.Single(third.Alerts);
        Assert.Equal(BreakerDecisions.DedupKey("plaid"), alert.DedupKey);
        Assert.Contains("still open after 3 checks (open since 2026-11-28 04:00:00Z", alert.Summary);

        var fourth = BreakerDecisions.Assess(third.Observations, new[] { Open(T0.AddMinutes(3)) }, ImmutableHashSet.Create(alert.DedupKey), T0.AddMinutes(3), 3);
        Assert.Empty(fourth.Alerts); // already escalated

        var closed = BreakerDecisions.Assess(fourth.Observations, new[] { new BreakerSnapshot("plaid", BreakerState.Closed, 0, null, null, TimeSpan.FromSeconds(60)) },
            ImmutableHashSet.Create(alert.DedupKey), T0.AddMinutes(4), 3);
        Assert.Empty(closed.Observations);
        Assert.Null(closed.ReprobeAfter);
        Assert.Equal("breaker_closed", Assert.Single(closed.Actions).Action);
    }

    private async Task<(IActorRef Supervisor, TestProbe Completed)> StartAsync(LoopbackHttpServer plaid, string persistenceId)
    {
        var database = await TestDatabases.CreateSeededAsync();
        var platform = NpgsqlDataSource.Create(database);
        var breakers = new ProviderCircuitBreakers(Sys.Scheduler, new[]
        {
            new ProviderSettings("plaid", MaxFailures: 1, CallTimeout: TimeSpan.FromSeconds(2), ResetTimeout: TimeSpan.FromSeconds(1)),
        });
        var settings = IntegrationHealthSettings.Defaults with
        {
            Timeout = TimeSpan.FromSeconds(2),
            Providers = new[] { new ProviderEndpoint("plaid", new Uri(plaid.BaseAddress, "plaid/"), "health", Required: true) },
        };
        var group = new CheckGroupDefinition(CheckGroups.IntegrationHealth, new[] { "plaid_connection" }, _ =>
            CheckGroupActor.Props(CheckGroups.IntegrationHealth, new IPlatformCheck[] { new ProviderIntegrationCheck("plaid", platform, Http, breakers, settings) }));
        var completed = CreateTestProbe();
        Sys.EventStream.Subscribe(completed, typeof(HeartbeatCompleted));
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(new HeartbeatSupervisorOptions(persistenceId,
            new HeartbeatSettings(TimeSpan.FromHours(4), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(10), 100, 100),
            new[] { group }, Array.Empty<OrchestratorDefinition>(), new RecordingRunLog(), Scheduled: false,
            Breakers: breakers, EscalateOpenBreakerAfterAttempts: 2)));
        supervisor.Tell(RunHeartbeatNow.Instance, ActorRefs.NoSender);
        return (supervisor, completed);
    }

    [Fact]
    public async Task A_provider_that_keeps_failing_opens_its_breaker_and_is_escalated_after_the_configured_checks()
    {
        await using var plaid = await LoopbackHttpServer.StartAsync(new HttpFault.Status(500));
        var (_, completed) = await StartAsync(plaid, "refusing");

        var first = completed.ExpectMsg<HeartbeatCompleted>(TimeSpan.FromSeconds(15)).Report;
        Assert.Equal(new[] { "plaid" }, first.OpenBreakers);
        Assert.Contains(first.Actions, a => a.Action == "breaker_open" && a.Detail.Contains("(1 of 2 checks)"));
        Assert.DoesNotContain(first.Alerts, a => a.DedupKey == BreakerDecisions.DedupKey("plaid"));

        // No one asks: the supervisor re-checks by itself once the reset timeout let a trial call through.
        var second = completed.ExpectMsg<HeartbeatCompleted>(TimeSpan.FromSeconds(15)).Report;
        var alert = Assert.Single(second.Alerts, a => a.DedupKey == BreakerDecisions.DedupKey("plaid"));
        Assert.Equal("super_admin", alert.Audience);
        Assert.True(plaid.RequestCount >= 2, "the half-open trial call reached the provider");
    }

    [Fact]
    public async Task A_provider_that_recovers_closes_its_breaker_without_escalation()
    {
        await using var plaid = await LoopbackHttpServer.StartAsync(new HttpFault.Status(500));
        var (supervisor, completed) = await StartAsync(plaid, "recovering");
        var first = completed.ExpectMsg<HeartbeatCompleted>(TimeSpan.FromSeconds(15)).Report;
        Assert.Equal(new[] { "plaid" }, first.OpenBreakers);

        plaid.Fault = new HttpFault.Healthy();
        var second = completed.ExpectMsg<HeartbeatCompleted>(TimeSpan.FromSeconds(15)).Report;
        Assert.Empty(second.OpenBreakers!);
        Assert.Contains(second.Actions, a => a.Action == "breaker_closed");
        Assert.DoesNotContain(second.Alerts, a => a.DedupKey.StartsWith("breaker:", StringComparison.Ordinal));
        var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5));
        Assert.Empty(state.OpenBreakers);
        completed.ExpectNoMsg(TimeSpan.FromSeconds(3)); // no more re-checks once closed
    }
}
