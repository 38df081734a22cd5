namespace ClawKeeper.Platform.Tasks;

/// <summary>
/// A task an orchestrator claimed. <paramref name="Attempt"/> is <c>tasks.attempts</c> after the claim
/// (1 for the first claim) and, with <paramref name="ClaimedBy"/>, fences every later write: an
/// outcome is recorded only while the task is still this attempt of this claimer.
/// </summary>
public sealed record ClaimedTask(
    string Id,
    string TenantId,
    string Orchestrator,
    string Kind,
    string PayloadJson,
    int Priority,
    int Attempt,
    string ClaimedBy,
    DateTimeOffset CreatedAt,
    DateTimeOffset AssignedAt);

public enum TaskOutcome
{
    Completed,
    Failed,
}

/// <summary>
/// What an <see cref="ITaskExecutor"/> reports for one attempt. Tokens and cost are recorded in
/// <c>agent_runs</c> whatever the outcome (a failed attempt still spent them).
/// </summary>
/// <param name="Retryable">For a failure: false = do not retry, the task fails at once.</param>
/// <param name="OutputJson">Optional JSON stored in <c>agent_runs.output</c>.</param>
public sealed record TaskExecution(
    TaskOutcome Outcome,
    long TokensUsed,
    decimal Cost,
    string? Error = null,
    bool Retryable = true,
    string? OutputJson = null)
{
    public static TaskExecution Completed(long tokensUsed = 0, decimal cost = 0m, string? outputJson = null) =>
        new(TaskOutcome.Completed, tokensUsed, cost, null, true, outputJson);

    public static TaskExecution Failed(string error, long tokensUsed = 0, decimal cost = 0m, bool retryable = true) =>
        new(TaskOutcome.Failed, tokensUsed, cost, error, retryable);
}

/// <summary>One attempt as <c>agent_runs</c> records it (duration measured by the caller around the execution).</summary>
public sealed record TaskRunRecord(long DurationMs, long TokensUsed, decimal Cost, string? OutputJson = null)
{
    /// <summary>The same values, made acceptable to the <c>agent_runs</c> constraints (non-negative, 6 decimals).</summary>
    public TaskRunRecord Normalised() => this with
    {
        DurationMs = Math.Max(0, DurationMs),
        TokensUsed = Math.Max(0, TokensUsed),
        Cost = Math.Round(Math.Max(0m, Cost), 6, MidpointRounding.AwayFromZero),
    };
}

public enum FailureDisposition
{
    /// <summary>Back to <c>pending</c>, claimable again from <see cref="FailureRecorded.NotBefore"/>.</summary>
    RetryScheduled,

    /// <summary>No attempts left (or not retryable): <c>failed</c> with <c>last_error</c> and <c>completed_at</c>.</summary>
    Failed,

    /// <summary>The task is no longer this attempt of this claimer (released, re-claimed or cancelled): nothing recorded.</summary>
    NotOwned,
}

public sealed record FailureRecorded(FailureDisposition Disposition, int Attempt, DateTimeOffset? NotBefore);
