using System.Diagnostics;
using Akka.Actor;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Platform.Tasks;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Orchestrators;

/// <summary>
/// Printed measurements (the benchmark), not timed tests: they assert only correctness
/// (every task released, completed exactly once) and write the numbers to the test output.
/// </summary>
public sealed class OrchestratorFleetMeasurements(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit("akka.loglevel = OFF", output)
{
    private readonly ITestOutputHelper _output = output;

    [Fact]
    public async Task Crash_to_claimable_latency_over_200_crashes()
    {
        const int crashes = 200;
        const int workers = 4;
        var database = await FleetTesting.DatabaseAsync();
        await FleetTesting.InsertAsync(database, "crash", "cfo", workers);
        await using var source = NpgsqlDataSource.Create(database);
        var starts = new System.Collections.Concurrent.ConcurrentQueue<long>();
        var blocking = new ScriptedExecutor(_ => Step.UntilCancelled);
        var executor = new DelegateTaskExecutor((task, ct) =>
        {
            starts.Enqueue(Stopwatch.GetTimestamp());
            return blocking.ExecuteAsync(task, ct);
        });
        var settings = FleetTesting.Fast with
        {
            Supervision = new FleetSupervisionSettings(TimeSpan.FromMinutes(1), RestartsBeforeBackoff: 100_000, EscalateAfter: 100_000, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)),
        };
        var released = CreateTestProbe();
        Sys.EventStream.Subscribe(released, typeof(OrchestratorTasksReleased));
        var fleet = Sys.ActorOf(OrchestratorFleetActor.Props(new[] { new OrchestratorDefinition("cfo", workers) }, FleetTesting.Options(source, executor, "bench", settings)));
        var orchestrator = Sys.ActorSelection(fleet.Path / "cfo");

        var toReleased = new List<double>();
        var toRunningAgain = new List<double>();
        for (var i = 0; i < crashes; i++)
        {
            await WaitUntil(() => blocking.InFlight == workers && starts.Count == workers * (i + 1), what: $"before crash {i + 1}: all tasks running");
            var crashedAt = Stopwatch.GetTimestamp();
            orchestrator.Tell(Kill.Instance);
            var release = released.ExpectMsg<OrchestratorTasksReleased>(TimeSpan.FromSeconds(30));
            Assert.Equal(workers, release.TaskIds.Count);
            toReleased.Add(Stopwatch.GetElapsedTime(crashedAt, release.Timestamp).TotalMilliseconds);
            await WaitUntil(() => starts.Count == workers * (i + 2), what: $"crash {i + 1}: the tasks running again");
            toRunningAgain.Add(Stopwatch.GetElapsedTime(crashedAt, starts.ToArray().Max()).TotalMilliseconds);
        }

        Assert.Empty(blocking.Violations);
        Assert.Equal(crashes + 1, (await fleet.Ask<OrchestratorStatus>(new GetOrchestratorStatus("cfo"), TimeSpan.FromSeconds(5))).Incarnation);
        Assert.Equal(crashes + 1, await Sql.ScalarAsync<int>(database, "SELECT min(attempts) FROM tasks"));
        _output.WriteLine($"crash -> tasks claimable (released, committed), {crashes} crashes of an orchestrator holding {workers} running tasks (Kill, restart, cancel, release): {Summary(toReleased)}");
        _output.WriteLine($"crash -> the same tasks running again on the restarted orchestrator: {Summary(toRunningAgain)}");
    }

    [Fact]
    public async Task Throughput_with_a_zero_work_executor_against_a_single_sql_loop()
    {
        const int perOrchestrator = 150;
        var definitions = OrchestratorCatalog.Names.Zip(new[] { 8, 15, 15, 12, 10, 12, 12, 10, 6 }, (name, workers) => new OrchestratorDefinition(name, workers)).ToList();
        var total = perOrchestrator * definitions.Count;

        // Baseline: one loop, the same statements one task at a time (claim, start, complete with its run).
        var baselineDatabase = await FleetTesting.DatabaseAsync();
        foreach (var d in definitions) await FleetTesting.InsertAsync(baselineDatabase, d.Name, d.Name, perOrchestrator);
        await using (var source = NpgsqlDataSource.Create(baselineDatabase))
        {
            var queue = new PostgresTaskQueue(source);
            var watch = Stopwatch.StartNew();
            var done = 0;
            foreach (var d in definitions)
            {
                while ((await queue.ClaimAsync(d.Name, "loop/" + d.Name, 1)) is [var task])
                {
                    await queue.MarkRunningAsync(task);
                    await queue.CompleteAsync(task, new TaskRunRecord(0, 0, 0m));
                    done++;
                }
            }

            watch.Stop();
            Assert.Equal(total, done);
            _output.WriteLine($"single SQL loop (claim 1, start, complete+run): {total} tasks in {watch.Elapsed.TotalSeconds:0.00} s = {total / watch.Elapsed.TotalSeconds:0} tasks/s");
        }

        // The fleet: nine orchestrators with their configured pools, zero-work executor.
        var database = await FleetTesting.DatabaseAsync();
        foreach (var d in definitions) await FleetTesting.InsertAsync(database, d.Name, d.Name, perOrchestrator);
        await using (var source = NpgsqlDataSource.Create(database))
        {
            var executor = new InstantTaskExecutor();
            var watch = Stopwatch.StartNew();
            Sys.ActorOf(OrchestratorFleetActor.Props(definitions, FleetTesting.Options(source, executor, "throughput")));
            await WaitUntil(() => executor.Executions == total, TimeSpan.FromMinutes(2));
            await WaitUntilAsync(async () => await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM tasks WHERE status = 'completed'") == total);
            watch.Stop();
            Assert.Equal((long)total, await Sql.ScalarAsync<long>(database, "SELECT count(DISTINCT task_id) FROM agent_runs"));
            _output.WriteLine($"fleet (9 orchestrators, {definitions.Sum(d => d.Workers)} workers, one node): {total} tasks claimed, run and recorded in {watch.Elapsed.TotalSeconds:0.00} s = {total / watch.Elapsed.TotalSeconds:0} tasks/s (includes start-up)");
        }
    }

    private static string Summary(List<double> samples)
    {
        var sorted = samples.Order().ToArray();
        double At(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return $"median {At(0.5):0.0} ms, p90 {At(0.9):0.0} ms, p99 {At(0.99):0.0} ms, max {sorted[^1]:0.0} ms (n = {sorted.Length}; the first crash: {samples[0]:0.0} ms)";
    }

    private static Task WaitUntil(Func<bool> condition, TimeSpan? within = null, string what = "condition") =>
        WaitUntilAsync(() => Task.FromResult(condition()), within, what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? within = null, string what = "condition")
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not reached: {what}");
            await Task.Delay(1);
        }
    }
}
