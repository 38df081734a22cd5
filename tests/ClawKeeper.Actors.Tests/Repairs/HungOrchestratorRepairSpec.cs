using Akka.Actor;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SystemHealth;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Repairs;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Orchestrators;
using ClawKeeper.Actors.Tests.Support;
using ClawKeeper.Platform.Tasks;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Repairs;

/// <summary>
/// A hung orchestrator (its actor blocked in a handler: it answers nothing) found by the heartbeat's ping,
/// restarted by the fleet, its tasks back in the real PostgreSQL queue and claimed again, never run twice at once.
/// </summary>
public sealed class HungOrchestratorRepairSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit("""
    akka.loglevel = INFO
    akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
    akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
    """, output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromMilliseconds(500);

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"still not true after {Patience.TotalSeconds} s: {what}");
            await Task.Delay(25);
        }
    }

    [Fact]
    public async Task A_hung_orchestrator_is_restarted_through_the_ping_path_and_its_tasks_are_claimed_again_and_run_once()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "hung", "cfo", 3);
        await using var source = NpgsqlDataSource.Create(database);
        var executor = new ScriptedExecutor(_ => Step.WaitForGate);
        var fleetOptions = FleetTesting.Options(source, executor, "node-h");
        var queue = new HangingQueue(fleetOptions.Queue);
        var released = CreateTestProbe();
        Sys.EventStream.Subscribe(released, typeof(OrchestratorTasksReleased));

        var definitions = new[] { new OrchestratorDefinition("cfo", 4) };
        var health = new SystemHealthSettings(null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), PingTimeout, 0.2, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        var group = new CheckGroupDefinition(CheckGroups.SystemHealth, new[] { "orchestrators_reachable" }, environment =>
            CheckGroupActor.Props(CheckGroups.SystemHealth, new IPlatformCheck[] { new OrchestratorsReachableCheck(new OrchestratorPinger(environment.Orchestrators, definitions), health) }));
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(new HeartbeatSupervisorOptions("hung",
            new HeartbeatSettings(TimeSpan.FromHours(4), TimeSpan.FromHours(1), TimeSpan.FromSeconds(30), 3, 100),
            new[] { group }, definitions, new RecordingRunLog(), Scheduled: false,
            Fleet: fleetOptions with { Queue = queue }, Repair: new RepairOptions(PingTimeout, TimeSpan.FromSeconds(1)))));

        // Three attempts run (of four workers); the next poll for more work hangs the orchestrator's own thread.
        await Eventually(() => Task.FromResult(executor.InFlight == 3), "three attempts running");
        queue.HangNextClaim();
        await Eventually(() => Task.FromResult(queue.Hanging), "the orchestrator is blocked in a handler");

        var asked = System.Diagnostics.Stopwatch.GetTimestamp();
        var report = (await supervisor.Ask<HeartbeatCompleted>(RunHeartbeatNow.Instance, Patience)).Report;
        var completed = System.Diagnostics.Stopwatch.GetElapsedTime(asked).TotalMilliseconds;
        var reachable = report.Groups.Single().Checks.Single();
        Assert.Equal(CheckStatus.Fail, reachable.Status);
        Assert.Contains("no answer from: cfo", reachable.Detail);
        Assert.Equal("soft", reachable.State); // repaired at the first (soft) failure; alerts wait for hard
        var action = Assert.Single(report.Actions, a => a.Action == "restart_orchestrator");
        Assert.StartsWith("cfo: no answer to a ping", action.Detail);
        Assert.StartsWith("restarted as cfo-", action.Outcome);
        Assert.Equal("answered a ping (4 workers)", action.Recheck);

        // The hung incarnation's attempts were cancelled and its three tasks went back to the queue...
        var back = released.ExpectMsg<OrchestratorTasksReleased>(Patience);
        Output?.WriteLine($"measured: heartbeat asked → hung orchestrator's tasks back in the queue {System.Diagnostics.Stopwatch.GetElapsedTime(asked, back.Timestamp).TotalMilliseconds:0} ms " +
                         $"(ping timeout {PingTimeout.TotalMilliseconds:0} ms, twice: the check and the confirming ping); asked → report with the re-check {completed:0} ms");
        Assert.Equal(3, back.TaskIds.Count);
        Assert.Contains("hung", back.Reason);
        Assert.Equal(3, executor.Cancelled);
        // ...and the new incarnation claims them again (attempt 2) while the old thread is still blocked.
        await Eventually(() => Task.FromResult(executor.InFlight == 3 && executor.TotalExecutions == 6), "the three tasks claimed again");
        Assert.True(queue.Hanging);
        var status = await supervisor.Ask<HeartbeatCompleted>(RunHeartbeatNow.Instance, Patience);
        Assert.Equal(CheckStatus.Pass, status.Report.Groups.Single().Status);

        executor.Open();
        await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "hung")).GetValueOrDefault("completed") == 3, "all three completed");
        // The blocked thread returns at last: the abandoned incarnation stops without releasing or claiming anything.
        queue.Unblock();
        await Eventually(() => Task.FromResult(!queue.Hanging), "the old thread returned");
        released.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        Assert.Equal(3L, (await FleetTesting.StatusCountsAsync(database, "hung"))["completed"]);
        Assert.Empty(executor.Violations); // never two attempts of one task at once
        Assert.All(executor.Executions.Values, n => Assert.Equal(2, n));
        Assert.Equal(3L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM agent_runs WHERE task_id LIKE 'hung-%' AND status = 'completed'"));
    }

    /// <summary>The real queue, except that one claim can be made to block the calling (actor) thread until released.</summary>
    private sealed class HangingQueue(ITaskQueue inner) : ITaskQueue
    {
        private readonly ManualResetEventSlim _release = new(false);
        private int _armed;
        private int _hanging;

        public bool Hanging => Volatile.Read(ref _hanging) == 1;

        public void HangNextClaim() => Interlocked.Exchange(ref _armed, 1);

        public void Unblock() => _release.Set();

        public Task<IReadOnlyList<ClaimedTask>> ClaimAsync(string orchestrator, string claimedBy, int max, CancellationToken ct = default)
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1)
            {
                Volatile.Write(ref _hanging, 1);
                _release.Wait(); // synchronously, on the caller's thread: the actor is stuck in its handler
                Volatile.Write(ref _hanging, 0);
            }
            return inner.ClaimAsync(orchestrator, claimedBy, max, ct);
        }

        public Task<string?> WhyCannotClaimAsync(CancellationToken ct = default) => inner.WhyCannotClaimAsync(ct);
        public Task<bool> MarkRunningAsync(ClaimedTask task, CancellationToken ct = default) => inner.MarkRunningAsync(task, ct);
        public Task<bool> CompleteAsync(ClaimedTask task, TaskRunRecord run, CancellationToken ct = default) => inner.CompleteAsync(task, run, ct);
        public Task<FailureRecorded> FailAsync(ClaimedTask task, TaskRunRecord run, string error, bool retryable, CancellationToken ct = default) => inner.FailAsync(task, run, error, retryable, ct);
        public Task<IReadOnlyList<string>> ReleaseAsync(string claimedBy, string reason, CancellationToken ct = default) => inner.ReleaseAsync(claimedBy, reason, ct);
        public Task<IReadOnlyList<string>> ReleaseNodeAsync(string nodeId, string reason, CancellationToken ct = default) => inner.ReleaseNodeAsync(nodeId, reason, ct);
        public Task<IReadOnlyList<string>> ReleaseStaleAsync(TimeSpan heldLongerThan, string reason, CancellationToken ct = default) => inner.ReleaseStaleAsync(heldLongerThan, reason, ct);
    }
}
