using Akka.Actor;
using Akka.TestKit;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Platform.Tasks;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Orchestrators;

/// <summary>
/// The working fleet on a real PostgreSQL: claiming, pools, retries, crashes, two nodes, outages.
/// Nothing here asserts on elapsed time: executors are scripted and every wait is for a state.
/// </summary>
public sealed class OrchestratorFleetSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit("akka.loglevel = INFO", output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static async Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? Patience);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"still not true after {(within ?? Patience).TotalSeconds} s: {what}");
            await Task.Delay(25);
        }
    }

    private static Task Eventually(Func<bool> condition, string what, TimeSpan? within = null) =>
        Eventually(() => Task.FromResult(condition()), what, within);

    private static Task<OrchestratorStatus> StatusAsync(IActorRef fleet, string name = "cfo") =>
        fleet.Ask<OrchestratorStatus>(new GetOrchestratorStatus(name), TimeSpan.FromSeconds(5));

    private static Task<object> PingAsync(IActorRef fleet, string name = "cfo") =>
        fleet.Ask<object>(new PingOrchestrator(name), TimeSpan.FromSeconds(5));

    /// <summary>The answer to a ping, or null when none came within 500 ms (a crashing orchestrator drops its mailbox).</summary>
    private static async Task<object?> TryPingAsync(IActorRef fleet, string name = "cfo")
    {
        try
        {
            return await fleet.Ask<object>(new PingOrchestrator(name), TimeSpan.FromMilliseconds(500));
        }
        catch (AskTimeoutException)
        {
            return null;
        }
    }

    private void KillOrchestrator(IActorRef fleet, string name = "cfo") => Sys.ActorSelection(fleet.Path / name).Tell(Akka.Actor.Kill.Instance);

    [Fact]
    public async Task Without_a_queue_or_with_claiming_off_the_orchestrators_only_answer_pings()
    {
        var queue = new UntouchableQueue();
        var definitions = new[] { new OrchestratorDefinition("cfo", 8), new OrchestratorDefinition("support-lead", 6) };
        var observing = Sys.ActorOf(OrchestratorFleetActor.Props(definitions, new OrchestratorFleetOptions(queue, new InstantTaskExecutor(), "node-x", ClaimTasks: false, FleetTesting.Fast with { OrphanSweepInterval = TimeSpan.FromMilliseconds(10) })));
        var bare = Sys.ActorOf(OrchestratorFleetActor.Props(definitions));

        foreach (var fleet in new[] { observing, bare })
        {
            Assert.Equal(new OrchestratorPong("cfo", 8, 0), await PingAsync(fleet));
            Assert.Equal(new OrchestratorPong("support-lead", 6, 0), await PingAsync(fleet, "support-lead"));
            Assert.Equal(OrchestratorMode.Observing, (await StatusAsync(fleet)).Mode);
            Assert.Equal(new UnknownOrchestrator("nobody"), await PingAsync(fleet, "nobody"));
        }

        Assert.Equal(0, queue.Calls);
    }

    [Fact]
    public async Task An_orchestrator_claims_up_to_its_pool_reports_real_busy_counts_and_records_every_run()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "work", "cfo", 10);
        await FleetTesting.InsertAsync(database, "elsewhere", "support-lead", 2);
        await using var source = NpgsqlDataSource.Create(database);
        var executor = new ScriptedExecutor(_ => Step.WaitForGate);
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 3) }, FleetTesting.Options(source, executor, "node-a")));

        await Eventually(() => executor.InFlight == 3, "three attempts running");
        Assert.Equal(new OrchestratorPong("cfo", 3, 3), await PingAsync(fleet));
        var counts = await FleetTesting.StatusCountsAsync(database, "work");
        Assert.Equal(3L, counts["running"]);
        Assert.Equal(7L, counts["pending"]);
        Assert.Equal(3L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM tasks WHERE claimed_by = 'node-a/cfo'"));

        executor.Open();
        await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "work")).GetValueOrDefault("completed") == 10, "all ten completed");
        await Eventually(async () => (await PingAsync(fleet)) is OrchestratorPong { BusyWorkers: 0 }, "pool idle again");

        Assert.Equal(3, executor.MaxInFlight);
        Assert.Empty(executor.Violations);
        Assert.All(executor.Executions.Values, n => Assert.Equal(1, n));
        var runs = await Sql.RowsAsync(database, """
            SELECT count(*), count(DISTINCT task_id), min(agent_id), sum(tokens_used), sum(cost), bool_and(duration_ms >= 0 AND completed_at >= started_at)
            FROM agent_runs WHERE task_id LIKE 'work-%' AND status = 'completed'
            """);
        Assert.Equal(new object?[] { 10L, 10L, "cfo", 1010m, 0.010m, true }, runs[0]);
        var status = await StatusAsync(fleet);
        Assert.Equal((10L, OrchestratorMode.Claiming, 1), (status.Completed, status.Mode, status.Incarnation));
        Assert.Equal(2L, (await FleetTesting.StatusCountsAsync(database, "elsewhere"))["pending"]); // not its domain
    }

    [Fact]
    public async Task Two_nodes_on_one_queue_never_take_the_same_task_and_complete_each_exactly_once()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "ap", "accounts-payable-lead", 120);
        await FleetTesting.InsertAsync(database, "ar", "accounts-receivable-lead", 80);
        await using var sourceA = NpgsqlDataSource.Create(database);
        await using var sourceB = NpgsqlDataSource.Create(database);
        var executor = new ScriptedExecutor(_ => Step.WaitForGate); // one executor for both nodes: it sees every attempt
        var definitions = new[] { new OrchestratorDefinition("accounts-payable-lead", 8), new OrchestratorDefinition("accounts-receivable-lead", 6) };
        var nodeB = ActorSystem.Create("node-b", "akka.loglevel = WARNING");
        try
        {
            var fleetA = Sys.ActorOf(OrchestratorFleetActor.Props(definitions, FleetTesting.Options(sourceA, executor, "node-a")), "orchestrators");
            var fleetB = nodeB.ActorOf(OrchestratorFleetActor.Props(definitions, FleetTesting.Options(sourceB, executor, "node-b")), "orchestrators");

            // Both nodes fill their pools from the same queue at the same time, disjointly.
            await Eventually(() => executor.InFlight == 28, "both nodes' pools full (2 x (8 + 6))");
            var held = (await Sql.RowsAsync(database, "SELECT claimed_by, count(*) FROM tasks WHERE status = 'running' GROUP BY claimed_by ORDER BY 1"))
                .Select(row => ((string)row[0]!, (long)row[1]!)).ToList();
            Assert.Equal(new[]
            {
                ("node-a/accounts-payable-lead", 8L), ("node-a/accounts-receivable-lead", 6L),
                ("node-b/accounts-payable-lead", 8L), ("node-b/accounts-receivable-lead", 6L),
            }, held);
            Assert.Equal(new OrchestratorPong("accounts-payable-lead", 8, 8), await PingAsync(fleetB, "accounts-payable-lead"));

            executor.Open();
            await Eventually(async () => (await FleetTesting.StatusCountsAsync(database)).GetValueOrDefault("completed") == 200, "all 200 completed", TimeSpan.FromSeconds(90));

            Assert.Empty(executor.Violations);
            Assert.Equal(200, executor.Executions.Count);
            Assert.All(executor.Executions, e => Assert.Equal(1, e.Value));
            var perTask = await Sql.RowsAsync(database, "SELECT count(*), count(DISTINCT task_id), max(n), min(n) FROM (SELECT task_id, count(*) AS n FROM agent_runs GROUP BY task_id) runs");
            Assert.Equal(new object?[] { 200L, 200L, 1L, 1L }, perTask[0]);
            var byNode = (await Sql.RowsAsync(database, "SELECT split_part(claimed_by, '/', 1), count(*) FROM tasks GROUP BY 1 ORDER BY 1"))
                .Select(row => (string)row[0]!).ToList();
            Assert.Equal(new[] { "node-a", "node-b" }, byNode);
            Assert.Equal(200L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM tasks WHERE attempts = 1"));
        }
        finally
        {
            await nodeB.Terminate();
        }
    }

    [Fact]
    public async Task A_killed_orchestrator_is_restarted_and_its_tasks_are_released_and_completed_exactly_once()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "kill", "cfo", 4);
        await using var source = NpgsqlDataSource.Create(database);
        // The first attempt of every task runs until cancelled: the orchestrator dies mid-task.
        var executor = new ScriptedExecutor(task => task.Attempt == 1 ? Step.UntilCancelled : Step.Complete);
        var released = CreateTestProbe();
        Sys.EventStream.Subscribe(released, typeof(OrchestratorTasksReleased));
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 4) }, FleetTesting.Options(source, executor, "node-a")));
        await Eventually(() => executor.InFlight == 4, "four attempts running");

        KillOrchestrator(fleet);

        var release = released.ExpectMsg<OrchestratorTasksReleased>(Patience);
        Assert.Equal(new[] { "kill-0001", "kill-0002", "kill-0003", "kill-0004" }, release.TaskIds);
        Assert.Equal("node-a/cfo", release.ClaimedBy);
        await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "kill")).GetValueOrDefault("completed") == 4, "all four completed");

        Assert.Equal(4, executor.Cancelled); // the first attempts were stopped, not left running
        Assert.Empty(executor.Violations);   // never two attempts of a task at once
        Assert.All(executor.Executions.Values, n => Assert.Equal(2, n));
        var runs = await Sql.RowsAsync(database, "SELECT task_id, status, id FROM agent_runs ORDER BY task_id");
        Assert.Equal(4, runs.Count);
        Assert.All(runs, run => Assert.Equal(("completed", $"run-{run[0]}-attempt-2"), ((string)run[1]!, (string)run[2]!)));
        Assert.Equal(4L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM tasks WHERE attempts = 2 AND last_error LIKE 'released: %'"));
        var status = await StatusAsync(fleet);
        Assert.Equal((2, 4L), (status.Incarnation, status.Completed));
    }

    [Fact]
    public async Task The_tasks_of_an_orchestrator_that_crashed_repeatedly_go_to_the_healthy_node_while_it_backs_off()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "moved", "cfo", 4);
        await using var sourceA = NpgsqlDataSource.Create(database);
        await using var sourceB = NpgsqlDataSource.Create(database);
        var executor = new ScriptedExecutor(task => task.Attempt == 1 ? Step.UntilCancelled : Step.Complete);
        // Node A's budget is spent at the first crash: it stays down for a minute and escalates at once.
        var fragile = FleetTesting.Fast with
        {
            Supervision = new FleetSupervisionSettings(TimeSpan.FromMinutes(5), RestartsBeforeBackoff: 0, EscalateAfter: 1, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1)),
        };
        var parent = CreateTestProbe();
        var published = CreateTestProbe();
        Sys.EventStream.Subscribe(published, typeof(OrchestratorEscalation));
        var definitions = new[] { new OrchestratorDefinition("cfo", 4) };
        var nodeA = Sys.ActorOf(FleetParent.Props(OrchestratorFleetActor.Props(definitions, FleetTesting.Options(sourceA, executor, "node-a", fragile)), parent), "node-a");
        var fleetA = await nodeA.Ask<IActorRef>(FleetParent.GetFleet.Instance, TimeSpan.FromSeconds(5));
        await Eventually(() => executor.InFlight == 4, "node A holds all four");
        var nodeB = ActorSystem.Create("node-b", "akka.loglevel = WARNING");
        try
        {
            var fleetB = nodeB.ActorOf(OrchestratorFleetActor.Props(definitions, FleetTesting.Options(sourceB, executor, "node-b")));
            await Eventually(async () => (await StatusAsync(fleetB)).Mode == OrchestratorMode.Claiming, "node B claiming (nothing to claim yet)");

            KillOrchestrator(fleetA);

            var escalation = parent.ExpectMsg<OrchestratorEscalation>(Patience);
            Assert.Equal(("cfo", 1, TimeSpan.FromMinutes(5)), (escalation.Orchestrator, escalation.Crashes, escalation.Window));
            Assert.Contains("ActorKilledException", escalation.LastError);
            Assert.InRange(escalation.NextRestartIn, TimeSpan.FromSeconds(40), TimeSpan.FromMinutes(1));
            Assert.Equal(escalation, published.ExpectMsg<OrchestratorEscalation>(Patience));
            await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "moved")).GetValueOrDefault("completed") == 4, "node B completed all four");

            Assert.Equal(4L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM tasks WHERE claimed_by = 'node-b/cfo' AND status = 'completed'"));
            Assert.Equal(4L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM agent_runs WHERE status = 'completed'"));
            Assert.Empty(executor.Violations);
            var down = Assert.IsType<OrchestratorRestarting>(await PingAsync(fleetA));
            Assert.Equal(1, down.Crashes);
            Assert.Equal(4L, (await StatusAsync(fleetB)).Completed);
        }
        finally
        {
            await nodeB.Terminate();
        }
    }

    [Fact]
    public async Task Tasks_a_dead_node_never_released_are_swept_back_into_the_queue_and_completed()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "orphan", "cfo", 3);
        await Sql.ExecuteAsync(database, """
            UPDATE tasks SET status = 'running', claimed_by = 'dead-node/cfo', attempts = 1,
                             assigned_at = now() - interval '2 hours', started_at = now() - interval '2 hours'
            """);
        await using var source = NpgsqlDataSource.Create(database);
        var swept = CreateTestProbe();
        Sys.EventStream.Subscribe(swept, typeof(StaleTasksReleased));
        var executor = new ScriptedExecutor(_ => Step.Complete);
        var settings = FleetTesting.Fast with { OrphanAfter = TimeSpan.FromMinutes(30), OrphanSweepInterval = TimeSpan.FromMilliseconds(50) };
        Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 2) }, FleetTesting.Options(source, executor, "node-a", settings)));

        var released = swept.ExpectMsg<StaleTasksReleased>(Patience);
        Assert.Equal(new[] { "orphan-0001", "orphan-0002", "orphan-0003" }, released.TaskIds);
        await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "orphan")).GetValueOrDefault("completed") == 3, "the orphans completed");
        Assert.Equal(3L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM tasks WHERE claimed_by = 'node-a/cfo' AND attempts = 2"));
        Assert.All(executor.Executions.Values, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task Repeated_crashes_restart_at_once_within_the_budget_then_back_off_and_escalate_once_per_streak()
    {
        var database = await FleetTesting.DatabaseAsync();
        await using var source = NpgsqlDataSource.Create(database);
        var settings = FleetTesting.Fast with
        {
            Supervision = new FleetSupervisionSettings(TimeSpan.FromMinutes(5), RestartsBeforeBackoff: 2, EscalateAfter: 3, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3)),
        };
        var parent = CreateTestProbe();
        // Escalations go to a configured target here (the other test has them go to the parent).
        var options = FleetTesting.Options(source, new InstantTaskExecutor(), "node-a", settings) with { EscalateTo = parent };
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 2) }, options));

        for (var crash = 1; crash <= 2; crash++)
        {
            var before = (await StatusAsync(fleet)).Incarnation;
            KillOrchestrator(fleet);
            await Eventually(async () => await TryPingAsync(fleet) is OrchestratorPong && (await StatusAsync(fleet)).Incarnation == before + 1, $"restarted after crash {crash}");
        }

        Assert.False(parent.HasMessages);
        KillOrchestrator(fleet); // the third: past the budget
        var escalation = parent.ExpectMsg<OrchestratorEscalation>(Patience);
        Assert.Equal(("cfo", 3), (escalation.Orchestrator, escalation.Crashes));
        Assert.Equal(3, Assert.IsType<OrchestratorRestarting>(await PingAsync(fleet)).Crashes); // stopped for its backoff, says so at once
        await Eventually(async () => await TryPingAsync(fleet) is OrchestratorPong, "started again after the backoff");
        Assert.Equal(4, (await StatusAsync(fleet)).Incarnation);

        KillOrchestrator(fleet); // the fourth, same streak: backs off again, no second escalation
        await Eventually(async () => await TryPingAsync(fleet) is OrchestratorRestarting { Crashes: 4 }, "backing off after the fourth crash");
        Assert.False(parent.HasMessages);
        await Eventually(async () => await TryPingAsync(fleet) is OrchestratorPong, "started again after the second backoff");
        await Eventually(async () => (await StatusAsync(fleet)).Mode == OrchestratorMode.Claiming, "claiming again");
    }

    [Fact]
    public async Task Failed_attempts_are_retried_then_the_task_fails_with_last_error_and_every_attempt_is_a_run()
    {
        var database = await FleetTesting.DatabaseAsync();
        await Sql.ExecuteAsync(database, """
            INSERT INTO tasks (id, tenant_id, orchestrator, kind) VALUES
              ('retry-fail', $1, 'compliance-lead', 'filing'),
              ('retry-throw', $1, 'compliance-lead', 'filing'),
              ('retry-third', $2, 'compliance-lead', 'filing')
            """, FleetTesting.TenantA, FleetTesting.TenantB);
        await using var source = NpgsqlDataSource.Create(database);
        var executor = new ScriptedExecutor(task => task.Id switch
        {
            "retry-fail" => Step.Fail,
            "retry-throw" => Step.Throw,
            _ => task.Attempt < 3 ? Step.Fail : Step.Complete,
        });
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("compliance-lead", 2) }, FleetTesting.Options(source, executor, "node-a")));

        await Eventually(async () =>
        {
            var counts = await FleetTesting.StatusCountsAsync(database, "retry");
            return counts.GetValueOrDefault("failed") == 2 && counts.GetValueOrDefault("completed") == 1;
        }, "two failed for good, one completed at its third attempt");

        var tasks = await Sql.RowsAsync(database, "SELECT id, status, attempts, last_error, completed_at IS NOT NULL FROM tasks ORDER BY id");
        Assert.Equal(new object?[] { "retry-fail", "failed", 3, "ledger locked for retry-fail", true }, tasks[0]);
        Assert.Equal(new object?[] { "retry-third", "completed", 3, "ledger locked for retry-third", true }, tasks[1]);
        Assert.Equal(new object?[] { "retry-throw", "failed", 3, "InvalidOperationException: executor blew up on retry-throw", true }, tasks[2]);
        var runs = await Sql.RowsAsync(database, "SELECT task_id, string_agg(status, ',' ORDER BY id) FROM agent_runs GROUP BY task_id ORDER BY task_id");
        Assert.Equal(new object?[] { "retry-fail", "failed,failed,failed" }, runs[0]);
        Assert.Equal(new object?[] { "retry-third", "failed,failed,completed" }, runs[1]);
        Assert.Equal(new object?[] { "retry-throw", "failed,failed,failed" }, runs[2]);
        var status = await StatusAsync(fleet, "compliance-lead");
        Assert.Equal((1L, 6L, 2L), (status.Completed, status.RetriesScheduled, status.Failed));
        Assert.Equal(1, status.Incarnation); // executor failures never crash the orchestrator
    }

    [Fact]
    public async Task An_attempt_that_outlives_the_task_timeout_is_cancelled_and_counts_as_a_failure()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "slow", "cfo", 1);
        await using var source = NpgsqlDataSource.Create(database);
        var executor = new ScriptedExecutor(_ => Step.UntilCancelled);
        var settings = FleetTesting.Fast with { TaskTimeout = TimeSpan.FromMilliseconds(100), Retry = FleetTesting.Fast.Retry with { MaxAttempts = 1 } };
        Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 1) }, FleetTesting.Options(source, executor, "node-a", settings)));

        await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "slow")).GetValueOrDefault("failed") == 1, "the task failed");

        Assert.Equal("timed out after 0.1 s", await Sql.ScalarAsync<string>(database, "SELECT last_error FROM tasks"));
        Assert.Equal(1, executor.Cancelled);
    }

    [Fact]
    public async Task A_database_outage_stops_the_claiming_with_backoff_and_it_resumes_without_a_restart()
    {
        var database = await FleetTesting.DatabaseAsync();
        await using var source = NpgsqlDataSource.Create(database);
        var executor = new InstantTaskExecutor();
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 4) }, FleetTesting.Options(source, executor, "node-a")));
        await Eventually(async () => (await StatusAsync(fleet)).Mode == OrchestratorMode.Claiming, "claiming");

        await FleetTesting.TakeDownAsync(database);
        try
        {
            await Eventually(async () => await StatusAsync(fleet) is { Mode: OrchestratorMode.DatabaseBackoff, ConsecutiveDatabaseFailures: >= 3 }, "backing off, retrying");
            Assert.IsType<OrchestratorPong>(await PingAsync(fleet)); // still answers
        }
        finally
        {
            await FleetTesting.BringBackAsync(database);
        }

        await FleetTesting.InsertAsync(database, "after", "cfo", 6);
        await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "after")).GetValueOrDefault("completed") == 6, "tasks submitted after the outage completed");
        var status = await StatusAsync(fleet);
        Assert.Equal((1, OrchestratorMode.Claiming, 0), (status.Incarnation, status.Mode, status.ConsecutiveDatabaseFailures));
        Assert.True(status.DatabaseErrors >= 3);
        Assert.NotNull(status.LastDatabaseError);
        Assert.Equal(6L, executor.Executions);
    }

    [Fact]
    public async Task Outcomes_reached_during_a_database_outage_are_recorded_once_it_is_over()
    {
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "outage", "cfo", 4);
        await using var source = NpgsqlDataSource.Create(database);
        var executor = new ScriptedExecutor(_ => Step.WaitForGate);
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", 4) }, FleetTesting.Options(source, executor, "node-a")));
        await Eventually(() => executor.InFlight == 4, "four attempts running");

        await FleetTesting.TakeDownAsync(database);
        try
        {
            executor.Open(); // the work finishes while the database is away
            await Eventually(async () => executor.InFlight == 0 && (await StatusAsync(fleet)).DatabaseErrors >= 4, "executions over, their outcomes failing to record");
            Assert.Equal(new OrchestratorPong("cfo", 4, 4), await PingAsync(fleet)); // workers stay busy until recorded
        }
        finally
        {
            await FleetTesting.BringBackAsync(database);
        }

        await Eventually(async () => (await FleetTesting.StatusCountsAsync(database, "outage")).GetValueOrDefault("completed") == 4, "all four recorded");
        Assert.Equal(4L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM agent_runs WHERE status = 'completed'"));
        Assert.All(executor.Executions.Values, n => Assert.Equal(1, n));
        Assert.Equal(1, (await StatusAsync(fleet)).Incarnation);
    }

    /// <summary>A queue that must never be touched (the observing fleet).</summary>
    private sealed class UntouchableQueue : ITaskQueue
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        private Task<T> Touched<T>()
        {
            Interlocked.Increment(ref _calls);
            throw new InvalidOperationException("an observing fleet touched the queue");
        }

        public Task<string?> WhyCannotClaimAsync(CancellationToken ct = default) => Touched<string?>();
        public Task<IReadOnlyList<ClaimedTask>> ClaimAsync(string orchestrator, string claimedBy, int max, CancellationToken ct = default) => Touched<IReadOnlyList<ClaimedTask>>();
        public Task<bool> MarkRunningAsync(ClaimedTask task, CancellationToken ct = default) => Touched<bool>();
        public Task<bool> CompleteAsync(ClaimedTask task, TaskRunRecord run, CancellationToken ct = default) => Touched<bool>();
        public Task<FailureRecorded> FailAsync(ClaimedTask task, TaskRunRecord run, string error, bool retryable, CancellationToken ct = default) => Touched<FailureRecorded>();
        public Task<IReadOnlyList<string>> ReleaseAsync(string claimedBy, string reason, CancellationToken ct = default) => Touched<IReadOnlyList<string>>();
        public Task<IReadOnlyList<string>> ReleaseNodeAsync(string nodeId, string reason, CancellationToken ct = default) => Touched<IReadOnlyList<string>>();
        public Task<IReadOnlyList<string>> ReleaseStaleAsync(TimeSpan heldLongerThan, string reason, CancellationToken ct = default) => Touched<IReadOnlyList<string>>();
    }
}
