namespace ClawKeeper.Platform.Tasks;

/// <summary>
/// The task queue as the orchestrators work it (<see cref="PostgresTaskQueue"/> on the platform
/// database). Claims and releases are cross-tenant: the queue needs a role that sees every tenant
/// (superuser or BYPASSRLS), see <see cref="WhyCannotClaimAsync"/>; the per-task writes set the
/// task's tenant as <c>app.tenant_id</c> in their transaction, so they also hold under RLS.
/// </summary>
public interface ITaskQueue
{
    /// <summary>Null when this queue can claim; otherwise why not (e.g. its role is subject to row-level security and would see no task).</summary>
    Task<string?> WhyCannotClaimAsync(CancellationToken ct = default);

    /// <summary>
    /// Claims up to <paramref name="max"/> claimable tasks of <paramref name="orchestrator"/> in one
    /// statement (pending, <c>not_before</c> passed; highest priority, then oldest first):
    /// pending → assigned, <c>claimed_by</c>, <c>assigned_at</c>, <c>attempts + 1</c>. Rows another
    /// claimer holds are skipped, never waited for, never taken twice.
    /// </summary>
    Task<IReadOnlyList<ClaimedTask>> ClaimAsync(string orchestrator, string claimedBy, int max, CancellationToken ct = default);

    /// <summary>assigned → running with <c>started_at</c>; false when the task is no longer this attempt of this claimer.</summary>
    Task<bool> MarkRunningAsync(ClaimedTask task, CancellationToken ct = default);

    /// <summary>→ completed with <c>completed_at</c> and one <c>agent_runs</c> row, in one transaction; false when not owned any more (nothing written).</summary>
    Task<bool> CompleteAsync(ClaimedTask task, TaskRunRecord run, CancellationToken ct = default);

    /// <summary>
    /// Records a failed attempt (an <c>agent_runs</c> row with status failed) and either schedules a retry
    /// (→ pending with <c>not_before</c>) or, when no attempts are left or <paramref name="retryable"/> is
    /// false, fails the task (→ failed with <c>last_error</c> and <c>completed_at</c>).
    /// </summary>
    Task<FailureRecorded> FailAsync(ClaimedTask task, TaskRunRecord run, string error, bool retryable, CancellationToken ct = default);

    /// <summary>Puts every assigned/running task of <paramref name="claimedBy"/> back to pending (claimable at once); returns their ids.</summary>
    Task<IReadOnlyList<string>> ReleaseAsync(string claimedBy, string reason, CancellationToken ct = default);

    /// <summary>Same as <see cref="ReleaseAsync"/> for every claimer of a node (<c>claimed_by</c> = <c>&lt;nodeId&gt;/…</c>): for a node that left the cluster.</summary>
    Task<IReadOnlyList<string>> ReleaseNodeAsync(string nodeId, string reason, CancellationToken ct = default);

    /// <summary>
    /// Puts back to pending every assigned/running task, whoever holds it, that was assigned (or started) more
    /// than <paramref name="heldLongerThan"/> ago: the tasks of a node that died without releasing them. Choose
    /// it well above the task timeout (a live orchestrator never holds a task that long); should a live one
    /// still hold it, its late outcome is refused, never recorded twice.
    /// </summary>
    Task<IReadOnlyList<string>> ReleaseStaleAsync(TimeSpan heldLongerThan, string reason, CancellationToken ct = default);
}
