namespace ClawKeeper.Platform.Tasks;

/// <summary>
/// What a worker does with a claimed task. Called concurrently (one call per busy worker); the
/// implementation must be thread-safe.
/// <list type="bullet">
/// <item>Return <see cref="TaskExecution.Completed"/> or <see cref="TaskExecution.Failed"/>; an exception
/// counts as a retryable failure with the exception's message as <c>last_error</c>.</item>
/// <item>Honour <paramref name="ct"/>: it is cancelled when the orchestrator crashes or stops (the
/// task then goes back to the queue, and it is released only once this call has returned or the
/// release grace has passed) and when the task timeout expires (a retryable failure).</item>
/// </list>
/// </summary>
public interface ITaskExecutor
{
    Task<TaskExecution> ExecuteAsync(ClaimedTask task, CancellationToken ct);
}

/// <summary>Completes every task at once with fixed usage: the zero-work executor (throughput measurements, tests).</summary>
public sealed class InstantTaskExecutor(long tokensUsed = 0, decimal cost = 0m) : ITaskExecutor
{
    private long _executions;

    /// <summary>How many tasks it executed.</summary>
    public long Executions => Interlocked.Read(ref _executions);

    public Task<TaskExecution> ExecuteAsync(ClaimedTask task, CancellationToken ct)
    {
        Interlocked.Increment(ref _executions);
        return Task.FromResult(TaskExecution.Completed(tokensUsed, cost));
    }
}

/// <summary>Executes a task with a delegate: deterministic scripted outcomes for tests.</summary>
public sealed class DelegateTaskExecutor(Func<ClaimedTask, CancellationToken, Task<TaskExecution>> execute) : ITaskExecutor
{
    public DelegateTaskExecutor(Func<ClaimedTask, TaskExecution> outcome)
        : this((task, _) => Task.FromResult(outcome(task)))
    {
    }

    public Task<TaskExecution> ExecuteAsync(ClaimedTask task, CancellationToken ct) => execute(task, ct);
}
