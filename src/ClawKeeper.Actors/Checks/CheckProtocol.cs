using System.Text.Json.Serialization;

namespace ClawKeeper.Actors.Checks;

/// <summary>pass | warn | fail | error (could not be evaluated) | skipped (not configured).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CheckStatus>))]
public enum CheckStatus
{
    [JsonStringEnumMemberName("pass")] Pass,
    [JsonStringEnumMemberName("warn")] Warn,
    [JsonStringEnumMemberName("fail")] Fail,
    [JsonStringEnumMemberName("error")] Error,
    [JsonStringEnumMemberName("skipped")] Skipped,
}

public static class CheckStatusExtensions
{
    public static string ToWire(this CheckStatus status) => status switch
    {
        CheckStatus.Pass => "pass",
        CheckStatus.Warn => "warn",
        CheckStatus.Fail => "fail",
        CheckStatus.Error => "error",
        CheckStatus.Skipped => "skipped",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    /// <summary>Fail and error make a heartbeat fail; warn and skipped do not.</summary>
    public static bool IsProblem(this CheckStatus status) => status is CheckStatus.Fail or CheckStatus.Error;

    /// <summary>The status of a group: the worst of its checks (fail before error before warn).</summary>
    public static CheckStatus Worst(IEnumerable<CheckStatus> statuses)
    {
        var all = statuses.ToList();
        if (all.Count == 0) return CheckStatus.Error;
        if (all.Contains(CheckStatus.Fail)) return CheckStatus.Fail;
        if (all.Contains(CheckStatus.Error)) return CheckStatus.Error;
        if (all.Contains(CheckStatus.Warn)) return CheckStatus.Warn;
        if (all.All(s => s == CheckStatus.Skipped)) return CheckStatus.Skipped;
        return CheckStatus.Pass;
    }
}

/// <summary>
/// What a check found, before the runner adds its id and duration. <paramref name="Progress"/>
/// is what a passing incremental check verified (e.g. new audit-chain positions); the supervisor
/// persists it as the next watermark.
/// </summary>
public sealed record CheckOutcome(CheckStatus Status, string Observed, string Threshold, string Detail, ICheckProgress? Progress = null)
{
    public static CheckOutcome Pass(string observed, string threshold, string detail = "") => new(CheckStatus.Pass, observed, threshold, detail);
    public static CheckOutcome Warn(string observed, string threshold, string detail) => new(CheckStatus.Warn, observed, threshold, detail);
    public static CheckOutcome Fail(string observed, string threshold, string detail) => new(CheckStatus.Fail, observed, threshold, detail);
    public static CheckOutcome Error(string threshold, string detail) => new(CheckStatus.Error, "not evaluated", threshold, detail);
    public static CheckOutcome Skipped(string threshold, string reason) => new(CheckStatus.Skipped, "not evaluated", threshold, reason);
}

/// <summary>One check's line in the report.</summary>
public sealed record CheckResult(string Check, CheckStatus Status, string Observed, string Threshold, string Detail, long DurationMs)
{
    /// <summary>Verified positions to persist (never in the report JSON).</summary>
    [JsonIgnore]
    public ICheckProgress? Progress { get; init; }

    /// <summary><c>soft</c>: a problem not yet confirmed (re-checked at the retry cadence); <c>hard</c>: confirmed (every non-problem is hard). Set by the heartbeat.</summary>
    public string? State { get; init; }

    /// <summary>The attempt of a problem against the configured maximum, e.g. <c>2/3</c> (a non-problem is <c>1/N</c>).</summary>
    public string? Attempt { get; init; }

    /// <summary>The check keeps flipping between fine and failing: one flapping notice, its alerts suppressed.</summary>
    public bool? Flapping { get; init; }

    /// <summary>In a retry round, the checks not re-run are carried from this heartbeat (not re-evaluated now).</summary>
    public string? CarriedFrom { get; init; }
}

/// <summary>Marker of what an incremental check verified this round.</summary>
public interface ICheckProgress;

/// <summary>A group's answer to <see cref="RunCheckGroup"/>.</summary>
public sealed record GroupResult(string Group, string HeartbeatId, IReadOnlyList<CheckResult> Checks)
{
    public CheckStatus Status => CheckStatusExtensions.Worst(Checks.Select(c => c.Status));
}

/// <summary>
/// What a check may know about the heartbeat it runs in: the positions verified so far and
/// whether this round re-verifies everything (the slow cadence, or on demand).
/// </summary>
public sealed record CheckContext(
    string HeartbeatId,
    DateTimeOffset StartedAt,
    DateTimeOffset? PreviousCompletedAt,
    DataIntegrity.IntegrityWatermarks? Watermarks = null,
    bool FullVerification = true,
    DateTimeOffset? PreviousStartedAt = null)
{
    /// <summary>Where the scan starts: nothing in a full verification, the verified positions otherwise.</summary>
    public DataIntegrity.IntegrityWatermarks EffectiveWatermarks =>
        FullVerification || Watermarks is null ? DataIntegrity.IntegrityWatermarks.None : Watermarks;

    /// <summary>
    /// What was verified before, compared against in every round, full verifications included: a chain
    /// rewritten consistently or truncated after it was verified fails even a full verification.
    /// </summary>
    public DataIntegrity.IntegrityWatermarks Anchors => Watermarks ?? DataIntegrity.IntegrityWatermarks.None;

    /// <summary>
    /// When the round stops waiting for the checks (the group deadline): a check still running then is
    /// cancelled, its queries cancelled on the server, instead of running on unobserved.
    /// </summary>
    public TimeSpan? Deadline { get; init; }
}

/// <summary>
/// Asks a group to run its checks now and answer with a <see cref="GroupResult"/>: all of them, or
/// only those named in <paramref name="Only"/> (<c>group/check</c> keys: a retry round re-runs the checks in soft state).
/// </summary>
public sealed record RunCheckGroup(CheckContext Context, IReadOnlySet<string>? Only = null)
{
    public bool Includes(string group, string check) => Only is null || Only.Contains($"{group}/{check}");

    public bool IncludesGroup(string group) => Only is null || Only.Any(k => k.StartsWith(group + "/", StringComparison.Ordinal));
}
