using Akka.Actor;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Platform.Tasks;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Orchestrators;

/// <summary>The fleet's restart on request (<see cref="RestartOrchestrators"/>): budget, backoff and escalation like a crash.</summary>
public sealed class OrchestratorRestartSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit("akka.loglevel = INFO", output)
{
    [Fact]
    public async Task Restarts_on_request_count_like_crashes_back_off_and_escalate()
    {
        var escalations = CreateTestProbe();
        var settings = FleetTesting.Fast with
        {
            Supervision = new FleetSupervisionSettings(TimeSpan.FromMinutes(5), RestartsBeforeBackoff: 1, EscalateAfter: 2, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1)),
        };
        var options = new OrchestratorFleetOptions(new NoQueue(), new InstantTaskExecutor(), "node-r", ClaimTasks: false, settings);
        var parent = Sys.ActorOf(FleetParent.Props(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 2) }, options), escalations));
        var fleet = await parent.Ask<IActorRef>(FleetParent.GetFleet.Instance, TimeSpan.FromSeconds(5));

        var first = await fleet.Ask<OrchestratorsRestarted>(new RestartOrchestrators(new[] { "cfo", "nobody" }, "test: hung"), TimeSpan.FromSeconds(5));
        var cfo = first.Outcomes.Single(o => o.Orchestrator == "cfo");
        Assert.True(cfo.Restarted, cfo.Outcome);
        Assert.StartsWith("restarted as cfo", cfo.Outcome);
        Assert.Equal(new OrchestratorRestartOutcome("nobody", false, "unknown orchestrator"), first.Outcomes.Single(o => o.Orchestrator == "nobody"));
        await AwaitAssertAsync(async () =>
            Assert.Equal(2, (await fleet.Ask<OrchestratorStatus>(new GetOrchestratorStatus("cfo"), TimeSpan.FromSeconds(5))).Incarnation));
        escalations.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        var second = Assert.Single((await fleet.Ask<OrchestratorsRestarted>(new RestartOrchestrators(new[] { "cfo" }, "test: hung again"), TimeSpan.FromSeconds(5))).Outcomes);
        Assert.False(second.Restarted);
        Assert.StartsWith("restart backed off", second.Outcome);
        var escalation = escalations.ExpectMsg<OrchestratorEscalation>();
        Assert.Equal(("cfo", 2), (escalation.Orchestrator, escalation.Crashes));
        Assert.Contains("hung: test: hung again", escalation.LastError);
        Assert.IsType<OrchestratorRestarting>(await fleet.Ask<object>(new PingOrchestrator("cfo"), TimeSpan.FromSeconds(5)));

        var third = Assert.Single((await fleet.Ask<OrchestratorsRestarted>(new RestartOrchestrators(new[] { "cfo" }, "test"), TimeSpan.FromSeconds(5))).Outcomes);
        Assert.False(third.Restarted);
        Assert.StartsWith("already restarting", third.Outcome);
    }

    /// <summary>Claiming is off: the fleet must not touch the queue.</summary>
    private sealed class NoQueue : ITaskQueue
    {
        private static Task<T> Never<T>() => Task.FromException<T>(new InvalidOperationException("an observing fleet touched the queue"));
        public Task<string?> WhyCannotClaimAsync(CancellationToken ct = default) => Never<string?>();
        public Task<IReadOnlyList<ClaimedTask>> ClaimAsync(string orchestrator, string claimedBy, int max, CancellationToken ct = default) => Never<IReadOnlyList<ClaimedTask>>();
        public Task<bool> MarkRunningAsync(ClaimedTask task, CancellationToken ct = default) => Never<bool>();
        public Task<bool> CompleteAsync(ClaimedTask task, TaskRunRecord run, CancellationToken ct = default) => Never<bool>();
        public Task<FailureRecorded> FailAsync(ClaimedTask task, TaskRunRecord run, string error, bool retryable, CancellationToken ct = default) => Never<FailureRecorded>();
        public Task<IReadOnlyList<string>> ReleaseAsync(string claimedBy, string reason, CancellationToken ct = default) => Never<IReadOnlyList<string>>();
        public Task<IReadOnlyList<string>> ReleaseNodeAsync(string nodeId, string reason, CancellationToken ct = default) => Never<IReadOnlyList<string>>();
        public Task<IReadOnlyList<string>> ReleaseStaleAsync(TimeSpan heldLongerThan, string reason, CancellationToken ct = default) => Never<IReadOnlyList<string>>();
    }
}
