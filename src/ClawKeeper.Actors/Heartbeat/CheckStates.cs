using System.Collections.Immutable;
using System.Text.Json.Serialization;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>How a problem is confirmed: re-checked every <paramref name="Interval"/>, hard at the <paramref name="MaxAttempts"/>-th failing observation in a row.</summary>
public sealed record RetryPolicy(TimeSpan Interval, int MaxAttempts)
{
    public static readonly RetryPolicy Default = new(TimeSpan.FromMinutes(1), 3);

    /// <summary>Every problem is hard at once (the behaviour before soft states).</summary>
    public static readonly RetryPolicy Immediate = new(TimeSpan.FromMinutes(1), 1);
}

/// <summary>Flap detection (Icinga): flapping above <paramref name="High"/>, settled again below <paramref name="Low"/>, over the last <paramref name="Window"/> observations.</summary>
public sealed record FlappingPolicy(double Low, double High, int Window)
{
    public static readonly FlappingPolicy Default = new(0.25, 0.30, 20);
}

/// <summary>
/// One check's monitoring state (Icinga semantics). <paramref name="Attempt"/> counts the failing
/// observations in a row (1 while the check is fine); <paramref name="Hard"/>: the state is confirmed
/// (a problem after max-attempts, or any non-problem). <paramref name="History"/>: one character per
/// observation, oldest first, <c>'1'</c> = problem, <c>'0'</c> = fine, at most the flapping window.
/// </summary>
public sealed record CheckState(
    CheckStatus Status,
    int Attempt,
    bool Hard,
    string History,
    bool Flapping,
    double FlapRatio,
    DateTimeOffset LastObservedAt)
{
    [JsonIgnore]
    public bool Problem => Status.IsProblem();

    /// <summary>A problem not yet confirmed: re-checked by a retry round.</summary>
    [JsonIgnore]
    public bool Soft => Problem && !Hard;
}

/// <summary>What changed for one check in one observation.</summary>
public enum CheckTransition
{
    None,
    /// <summary>A new problem, not yet confirmed.</summary>
    BecameSoft,
    /// <summary>The problem is confirmed now (this observation).</summary>
    BecameHard,
    /// <summary>A soft problem went away before it was confirmed: no alert, no count.</summary>
    RecoveredWhileSoft,
    /// <summary>A hard problem went away.</summary>
    RecoveredFromHard,
}

/// <summary>One check of a round as the state machine saw it.</summary>
public sealed record CheckObservation(string Group, string Check, CheckState State, CheckTransition Transition, bool StartedFlapping, bool StoppedFlapping)
{
    public string Key => CheckStates.KeyOf(Group, Check);
}

/// <summary>
/// The soft/hard state and flap history of every check, persisted in <see cref="HeartbeatState"/>. Pure:
/// <see cref="Observe"/> folds one round's results in.
/// <para>
/// <paramref name="CycleFailed"/>: no longer used (every failed round counts as a failed heartbeat now); kept
/// so that states persisted before read unchanged. <paramref name="Streak"/>: every check that failed in a
/// heartbeat of the current failure streak, with its latest evidence (null: no streak, or a state persisted
/// before streaks were kept). <paramref name="FullRoundStartedAt"/> /
/// <paramref name="FullRoundWindowStart"/>: when the last full round started and the event-window start it
/// used, so a retry re-counts that round's window instead of looking only at the minutes since it.
/// </para>
/// </summary>
public sealed record CheckStates(
    ImmutableDictionary<string, CheckState> Checks,
    bool CycleFailed,
    DateTimeOffset? FullRoundStartedAt,
    DateTimeOffset? FullRoundWindowStart,
    ImmutableDictionary<string, StreakProblem>? Streak = null)
{
    public static readonly CheckStates Empty = new(ImmutableDictionary<string, CheckState>.Empty, false, null, null);

    public static string KeyOf(string group, string check) => $"{group}/{check}";

    /// <summary>The checks a retry round re-runs (soft problems), as <c>group/check</c> keys.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> SoftChecks => Checks.Where(kv => kv.Value.Soft).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// A data-integrity <c>fail</c> is hard at once: writes are blocked and super_admin is alerted
    /// without waiting for retries (money), and it is never "recovered while soft" by an incremental
    /// re-check that cannot see what a full verification saw.
    /// </summary>
    public static bool HardAtOnce(string group, CheckStatus status) => group == CheckGroups.DataIntegrity && status == CheckStatus.Fail;

    /// <summary>
    /// Folds one round into the states. In a retry round only the re-run checks are observed; the
    /// others keep their state. A full round forgets checks that no longer exist.
    /// </summary>
    public (CheckStates States, IReadOnlyList<CheckObservation> Observations) Observe(
        IReadOnlyList<GroupReport> groups, bool retryRound, DateTimeOffset now, RetryPolicy retry, FlappingPolicy flapping)
    {
        var next = retryRound ? Checks.ToBuilder() : ImmutableDictionary.CreateBuilder<string, CheckState>();
        var observations = new List<CheckObservation>();
        foreach (var group in groups)
            foreach (var check in group.Checks)
            {
                var key = KeyOf(group.Group, check.Check);
                Checks.TryGetValue(key, out var previous);
                var (state, transition) = Next(previous, group.Group, check.Status, now, retry);
                var history = ((previous?.History ?? "") + (state.Problem ? '1' : '0'));
                if (history.Length > flapping.Window) history = history[^flapping.Window..];
                var ratio = FlapRatio(history, flapping.Window);
                var wasFlapping = previous?.Flapping ?? false;
                var isFlapping = wasFlapping ? ratio >= flapping.Low : ratio > flapping.High;
                state = state with { History = history, FlapRatio = Math.Round(ratio, 4), Flapping = isFlapping };
                next[key] = state;
                observations.Add(new CheckObservation(group.Group, check.Check, state, transition, isFlapping && !wasFlapping, wasFlapping && !isFlapping));
            }
        return (this with { Checks = next.ToImmutable() }, observations);
    }

    private static (CheckState State, CheckTransition Transition) Next(CheckState? previous, string group, CheckStatus status, DateTimeOffset now, RetryPolicy retry)
    {
        if (!status.IsProblem())
        {
            var transition = previous is { Problem: true } ? previous.Hard ? CheckTransition.RecoveredFromHard : CheckTransition.RecoveredWhileSoft : CheckTransition.None;
            return (new CheckState(status, 1, true, "", false, 0, now), transition);
        }
        if (previous is { Problem: true, Hard: true })
            return (new CheckState(status, previous.Attempt, true, "", false, 0, now), CheckTransition.None);
        var attempt = previous is { Problem: true } ? previous.Attempt + 1 : 1;
        var hard = attempt >= retry.MaxAttempts || HardAtOnce(group, status);
        return (new CheckState(status, Math.Min(attempt, retry.MaxAttempts), hard, "", false, 0, now),
            hard ? CheckTransition.BecameHard : CheckTransition.BecameSoft);
    }

    /// <summary>
    /// Icinga's weighted state-change ratio: each change between consecutive observations counts with a
    /// weight from 0.8 (oldest) to 1.2 (newest), divided by the changes a full window can hold, so a
    /// short history cannot look like flapping.
    /// </summary>
    public static double FlapRatio(string history, int window)
    {
        if (window < 2 || history.Length < 2) return 0;
        var transitions = window - 1;
        var offset = transitions - (history.Length - 1); // a short history: its changes are the newest ones
        double weighted = 0;
        for (var i = 1; i < history.Length; i++)
        {
            if (history[i] == history[i - 1]) continue;
            var position = offset + i - 1; // 0 = oldest transition slot of a full window
            weighted += 0.8 + 0.4 * position / Math.Max(1, transitions - 1);
        }
        return weighted / transitions;
    }
}
