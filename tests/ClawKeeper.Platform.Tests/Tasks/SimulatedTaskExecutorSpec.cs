using ClawKeeper.Platform.Tasks;

namespace ClawKeeper.Platform.Tests.Tasks;

public sealed class SimulatedTaskExecutorSpec
{
    private static readonly SimulatedTaskProfile Profile = new(
        TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), 200, 4000, 0.002m, 0.03m, FailureRatio: 0.1, Seed: 7);

    private static ClaimedTask Claimed(string id, int attempt = 1) =>
        new(id, "t-1", "cfo", "categorize", "{}", 0, attempt, "n/cfo", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    [Fact]
    public void An_attempt_is_planned_the_same_way_every_time_and_depends_on_seed_task_and_attempt()
    {
        var a = new SimulatedTaskExecutor(Profile);
        var b = new SimulatedTaskExecutor(Profile);

        Assert.Equal(a.Plan("task-1", 1), b.Plan("task-1", 1));
        var plans = new[]
        {
            a.Plan("task-1", 1), a.Plan("task-1", 2), a.Plan("task-2", 1),
            new SimulatedTaskExecutor(Profile with { Seed = 8 }).Plan("task-1", 1),
        };
        Assert.Equal(plans.Length, plans.Distinct().Count());
    }

    [Fact]
    public void Draws_follow_the_configured_distributions()
    {
        var executor = new SimulatedTaskExecutor(Profile);
        var plans = Enumerable.Range(1, 10_000).Select(i => executor.Plan($"task-{i}", 1)).ToList();
        var succeeded = plans.Where(p => p.Succeeds).ToList();

        // failure ratio 0.1 (fixed seed: the count is fixed too; the band documents the intent)
        Assert.InRange(plans.Count(p => !p.Succeeds), 900, 1100);
        Assert.All(succeeded, p =>
        {
            Assert.InRange(p.Duration, Profile.MinDuration, Profile.MaxDuration);
            Assert.InRange(p.TokensUsed, Profile.MinTokens, Profile.MaxTokens);
            Assert.InRange(p.Cost, p.TokensUsed / 1000m * Profile.MinCostPer1kTokens - 0.000001m, p.TokensUsed / 1000m * Profile.MaxCostPer1kTokens + 0.000001m);
            Assert.Equal(p.Cost, Math.Round(p.Cost, 6));
        });
        // log-uniform duration: about half below the geometric mean of 100 ms and 10 s (1 s)
        Assert.InRange(succeeded.Count(p => p.Duration < TimeSpan.FromSeconds(1)) / (double)succeeded.Count, 0.45, 0.55);
        // a failure stops part-way: no more than the full attempt would have used
        Assert.All(plans.Where(p => !p.Succeeds), p => Assert.InRange(p.TokensUsed, 0, Profile.MaxTokens));
    }

    [Fact]
    public async Task Execution_waits_the_planned_duration_and_reports_the_planned_usage_or_failure()
    {
        var waited = new List<TimeSpan>();
        var executor = new SimulatedTaskExecutor(Profile, (span, _) => { waited.Add(span); return System.Threading.Tasks.Task.CompletedTask; });
        var success = Enumerable.Range(1, 100).Select(i => $"task-{i}").First(id => executor.Plan(id, 1).Succeeds);
        var failure = Enumerable.Range(1, 100).Select(i => $"task-{i}").First(id => !executor.Plan(id, 1).Succeeds);

        var completed = await executor.ExecuteAsync(Claimed(success), CancellationToken.None);
        var failed = await executor.ExecuteAsync(Claimed(failure), CancellationToken.None);

        var plan = executor.Plan(success, 1);
        Assert.Equal((TaskOutcome.Completed, plan.TokensUsed, plan.Cost), (completed.Outcome, completed.TokensUsed, completed.Cost));
        Assert.Contains("\"simulated\":true", completed.OutputJson);
        Assert.Equal(TaskOutcome.Failed, failed.Outcome);
        Assert.True(failed.Retryable);
        Assert.Contains($"simulated failure of categorize task {failure} (attempt 1)", failed.Error);
        Assert.Equal(new[] { plan.Duration, executor.Plan(failure, 1).Duration }, waited);
    }

    [Fact]
    public async Task Execution_stops_when_cancelled()
    {
        var executor = new SimulatedTaskExecutor(Profile with { MinDuration = TimeSpan.FromMinutes(10), MaxDuration = TimeSpan.FromMinutes(10) });
        using var cancel = new CancellationTokenSource();
        var running = executor.ExecuteAsync(Claimed("slow"), cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [Fact]
    public void Fixed_and_zero_durations_and_invalid_profiles()
    {
        Assert.Equal(TimeSpan.FromSeconds(2), new SimulatedTaskExecutor(Profile with { MinDuration = TimeSpan.FromSeconds(2), MaxDuration = TimeSpan.FromSeconds(2) }).Plan("x", 1).Duration);
        Assert.Equal(TimeSpan.Zero, new SimulatedTaskExecutor(Profile with { MinDuration = TimeSpan.Zero, MaxDuration = TimeSpan.Zero }).Plan("x", 1).Duration);
        Assert.InRange(new SimulatedTaskExecutor(Profile with { MinDuration = TimeSpan.Zero }).Plan("x", 1).Duration, TimeSpan.Zero, Profile.MaxDuration);
        Assert.All(Enumerable.Range(1, 50), i => Assert.True(new SimulatedTaskExecutor(Profile with { FailureRatio = 0 }).Plan($"t{i}", 1).Succeeds));
        Assert.All(Enumerable.Range(1, 50), i => Assert.False(new SimulatedTaskExecutor(Profile with { FailureRatio = 1 }).Plan($"t{i}", 1).Succeeds));

        Assert.Throws<ArgumentException>(() => new SimulatedTaskExecutor(Profile with { MaxTokens = 1 }));
        Assert.Throws<ArgumentException>(() => new SimulatedTaskExecutor(Profile with { FailureRatio = 1.5 }));
        Assert.Throws<ArgumentException>(() => new SimulatedTaskExecutor(Profile with { MinDuration = TimeSpan.FromSeconds(-1) }));
    }

    [Fact]
    public void Retry_backoff_doubles_up_to_the_cap_and_jitter_only_shortens_it()
    {
        var policy = new TaskRetryPolicy(5, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(60), Jitter: 0);
        Assert.Equal(new[] { 10, 20, 40, 60, 60 }, Enumerable.Range(1, 5).Select(n => (int)policy.Delay(n).TotalSeconds));

        var jittered = policy with { Jitter = 0.5 };
        var random = new Random(1);
        Assert.All(Enumerable.Range(0, 200), _ => Assert.InRange(jittered.Delay(3, random), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(40)));
    }
}
