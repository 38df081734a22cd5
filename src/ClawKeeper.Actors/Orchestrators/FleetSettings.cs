using System.Globalization;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Platform.Tasks;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>
/// How the fleet supervises its orchestrators. An orchestrator's crashes are counted over
/// <paramref name="CrashWindow"/>: the first <paramref name="RestartsBeforeBackoff"/> restart it at once
/// (its tasks are back in the queue within milliseconds either way); after that it is stopped and
/// started again after an exponential backoff (<paramref name="BackoffMin"/> doubling up to
/// <paramref name="BackoffMax"/>), so a restart storm cannot starve the node; at
/// <paramref name="EscalateAfter"/> crashes in the window the fleet tells its parent
/// (<see cref="OrchestratorEscalation"/>), once per streak.
/// </summary>
public sealed record FleetSupervisionSettings(
    TimeSpan CrashWindow, int RestartsBeforeBackoff, int EscalateAfter, TimeSpan BackoffMin, TimeSpan BackoffMax)
{
    public static readonly FleetSupervisionSettings Default = new(TimeSpan.FromMinutes(1), 3, 5, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
}

/// <summary>What the workers run: <c>simulated</c> (<see cref="SimulatedTaskExecutor"/> with <paramref name="Simulated"/>) or <c>instant</c> (<see cref="InstantTaskExecutor"/>, zero work).</summary>
public sealed record FleetExecutorSettings(string Kind, SimulatedTaskProfile Simulated)
{
    public static readonly IReadOnlyList<string> Kinds = new[] { "simulated", "instant" };

    public static readonly FleetExecutorSettings Default = new("simulated", SimulatedTaskProfile.Default);

    public ITaskExecutor Create() => Kind == "instant" ? new InstantTaskExecutor() : new SimulatedTaskExecutor(Simulated);
}

/// <summary>
/// Settings of the working fleet, under <c>clawkeeper.fleet</c> (not under <c>clawkeeper.orchestrators</c>,
/// whose keys must be orchestrator names). Defaults and comments: <c>fleet.conf.example</c> next to this file.
/// </summary>
/// <param name="ClaimTasks">Whether the node's orchestrators work the queue (<c>check --once</c> never does, whatever this says).</param>
/// <param name="PollInterval">How often an orchestrator with free workers looks for claimable tasks when the queue seemed empty.</param>
/// <param name="MaxClaimBatch">At most this many tasks per claim statement (and never more than the free workers).</param>
/// <param name="TaskTimeout">An attempt still running after this is cancelled and counts as a retryable failure.</param>
/// <param name="ReleaseGrace">After a crash, how long the cancelled attempts get to stop before their tasks are released anyway.</param>
/// <param name="CommandTimeout">Deadline of one queue statement.</param>
/// <param name="DatabaseBackoffMin">First pause after a database error (claims stop meanwhile); doubles per consecutive error, with jitter.</param>
/// <param name="DatabaseBackoffMax">Cap of that pause.</param>
/// <param name="OrphanAfter">A task assigned or running for longer than this, whoever holds it, is put back in the
/// queue (its node died without releasing it); zero = never. Must exceed task-timeout + release-grace.</param>
/// <param name="OrphanSweepInterval">How often the fleet looks for such tasks.</param>
public sealed record FleetSettings(
    bool ClaimTasks,
    TimeSpan PollInterval,
    int MaxClaimBatch,
    TimeSpan TaskTimeout,
    TimeSpan ReleaseGrace,
    TimeSpan CommandTimeout,
    TaskRetryPolicy Retry,
    TimeSpan DatabaseBackoffMin,
    TimeSpan DatabaseBackoffMax,
    FleetSupervisionSettings Supervision,
    FleetExecutorSettings Executor,
    TimeSpan OrphanAfter,
    TimeSpan OrphanSweepInterval)
{
    public const string DefaultPrefix = "clawkeeper.fleet";

    public static readonly FleetSettings Default = new(
        ClaimTasks: true,
        PollInterval: TimeSpan.FromSeconds(1),
        MaxClaimBatch: 32,
        TaskTimeout: TimeSpan.FromMinutes(5),
        ReleaseGrace: TimeSpan.FromSeconds(5),
        CommandTimeout: TimeSpan.FromSeconds(15),
        Retry: TaskRetryPolicy.Default,
        DatabaseBackoffMin: TimeSpan.FromMilliseconds(500),
        DatabaseBackoffMax: TimeSpan.FromSeconds(30),
        Supervision: FleetSupervisionSettings.Default,
        Executor: FleetExecutorSettings.Default,
        OrphanAfter: TimeSpan.FromMinutes(15),
        OrphanSweepInterval: TimeSpan.FromMinutes(1));

    /// <summary>
    /// Reads and validates; problems go to <paramref name="r"/> (each naming its key) and the default of a bad
    /// key is used, so the caller lists every problem at once.
    /// </summary>
    public static FleetSettings Read(SettingsReader r, string prefix = DefaultPrefix)
    {
        var d = Default;
        var retry = $"{prefix}.retry";
        var db = $"{prefix}.database-backoff";
        var sup = $"{prefix}.supervision";
        var sim = $"{prefix}.executor.simulated";
        var ds = d.Simulated();

        var retryPolicy = new TaskRetryPolicy(
            MaxAttempts: r.Int($"{retry}.max-attempts", d.Retry.MaxAttempts, 1, 100),
            BaseDelay: r.Duration($"{retry}.base-delay", d.Retry.BaseDelay),
            MaxDelay: r.Duration($"{retry}.max-delay", d.Retry.MaxDelay),
            Jitter: r.Ratio($"{retry}.jitter", d.Retry.Jitter));
        if (retryPolicy.MaxDelay < retryPolicy.BaseDelay)
            r.AddError($"{retry}.max-delay", "must be at least retry.base-delay");

        var dbMin = r.Duration($"{db}.min", d.DatabaseBackoffMin);
        var dbMax = r.Duration($"{db}.max", d.DatabaseBackoffMax);
        if (dbMax < dbMin) r.AddError($"{db}.max", "must be at least database-backoff.min");

        var supervision = new FleetSupervisionSettings(
            CrashWindow: r.Duration($"{sup}.crash-window", d.Supervision.CrashWindow, min: TimeSpan.FromSeconds(1)),
            RestartsBeforeBackoff: r.Int($"{sup}.restarts-before-backoff", d.Supervision.RestartsBeforeBackoff, 0, 1000),
            EscalateAfter: r.Int($"{sup}.escalate-after", d.Supervision.EscalateAfter, 1, 1000),
            BackoffMin: r.Duration($"{sup}.backoff-min", d.Supervision.BackoffMin),
            BackoffMax: r.Duration($"{sup}.backoff-max", d.Supervision.BackoffMax));
        if (supervision.BackoffMax < supervision.BackoffMin) r.AddError($"{sup}.backoff-max", "must be at least supervision.backoff-min");

        var profile = new SimulatedTaskProfile(
            MinDuration: r.Duration($"{sim}.duration-min", ds.MinDuration, min: TimeSpan.Zero),
            MaxDuration: r.Duration($"{sim}.duration-max", ds.MaxDuration, min: TimeSpan.Zero),
            MinTokens: r.Int($"{sim}.tokens-min", (int)ds.MinTokens, 0),
            MaxTokens: r.Int($"{sim}.tokens-max", (int)ds.MaxTokens, 0),
            MinCostPer1kTokens: Money(r, $"{sim}.cost-per-1k-tokens-min", ds.MinCostPer1kTokens),
            MaxCostPer1kTokens: Money(r, $"{sim}.cost-per-1k-tokens-max", ds.MaxCostPer1kTokens),
            FailureRatio: r.Ratio($"{sim}.failure-ratio", ds.FailureRatio),
            Seed: Long(r, $"{sim}.seed", ds.Seed));
        if (profile.Problem() is { } problem)
        {
            r.AddError(sim, $"inconsistent simulated executor: {problem}");
            profile = ds;
        }

        var releaseGrace = r.Duration($"{prefix}.release-grace", d.ReleaseGrace, min: TimeSpan.Zero, max: TimeSpan.FromMinutes(5));
        var taskTimeout = r.Duration($"{prefix}.task-timeout", d.TaskTimeout, min: TimeSpan.FromMilliseconds(10));
        var orphanAfter = r.Duration($"{prefix}.orphan-after", d.OrphanAfter, min: TimeSpan.Zero);
        if (orphanAfter > TimeSpan.Zero && orphanAfter <= taskTimeout + releaseGrace)
        {
            r.AddError($"{prefix}.orphan-after", $"must be 0s (off) or longer than task-timeout + release-grace ({(taskTimeout + releaseGrace).TotalSeconds:0.###}s): a live orchestrator holds a task that long");
            orphanAfter = taskTimeout + releaseGrace > d.OrphanAfter ? TimeSpan.Zero : d.OrphanAfter;
        }

        return new FleetSettings(
            ClaimTasks: r.Boolean($"{prefix}.claim-tasks", d.ClaimTasks),
            PollInterval: r.Duration($"{prefix}.poll-interval", d.PollInterval, min: TimeSpan.FromMilliseconds(10), max: TimeSpan.FromMinutes(10)),
            MaxClaimBatch: r.Int($"{prefix}.max-claim-batch", d.MaxClaimBatch, 1, 10_000),
            TaskTimeout: taskTimeout,
            ReleaseGrace: releaseGrace,
            CommandTimeout: r.Duration($"{prefix}.command-timeout", d.CommandTimeout, min: TimeSpan.FromSeconds(1), max: TimeSpan.FromMinutes(10)),
            Retry: retryPolicy,
            DatabaseBackoffMin: dbMin,
            DatabaseBackoffMax: dbMax,
            Supervision: supervision,
            Executor: new FleetExecutorSettings(
                r.OneOf($"{prefix}.executor.kind", d.Executor.Kind, FleetExecutorSettings.Kinds.ToArray()),
                profile),
            OrphanAfter: orphanAfter,
            OrphanSweepInterval: r.Duration($"{prefix}.orphan-sweep-interval", d.OrphanSweepInterval, min: TimeSpan.FromMilliseconds(10)));
    }

    private SimulatedTaskProfile Simulated() => Executor.Simulated;

    private static decimal Money(SettingsReader r, string key, decimal fallback)
    {
        if (!r.Has(key)) return fallback;
        var raw = r.String(key).Trim();
        if (decimal.TryParse(raw, NumberStyles.Number, CultureInfo.InvariantCulture, out var value) && value >= 0)
            return value;
        r.AddError(key, $"must be a non-negative amount such as 0.002; got '{raw}'");
        return fallback;
    }

    private static long Long(SettingsReader r, string key, long fallback)
    {
        if (!r.Has(key)) return fallback;
        var raw = r.String(key).Trim();
        if (long.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            return value;
        r.AddError(key, $"must be a whole number; got '{raw}'");
        return fallback;
    }
}
