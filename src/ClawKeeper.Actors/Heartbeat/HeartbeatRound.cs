using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>A group the round waits for, with the checks it owes.</summary>
public sealed record ExpectedGroup(string Group, IReadOnlyList<string> CheckIds);

/// <summary>
/// One heartbeat in flight: which groups answered. Pure; the supervisor closes it when every
/// group answered or at the deadline, whichever comes first.
/// </summary>
public sealed record HeartbeatRound(
    string Id,
    DateTimeOffset StartedAt,
    IReadOnlyList<ExpectedGroup> Expected,
    ImmutableDictionary<string, GroupResult> Received,
    bool DryRun,
    bool FullVerification = false)
{
    /// <summary>A retry round: only the checks in soft state were asked for.</summary>
    public bool Retry { get; init; }

    /// <summary>The event-window start the checks were given (<see cref="CheckContext.PreviousStartedAt"/>).</summary>
    public DateTimeOffset? WindowStart { get; init; }

    public static HeartbeatRound Start(string id, DateTimeOffset startedAt, IReadOnlyList<ExpectedGroup> expected, bool dryRun, bool fullVerification = false) =>
        new(id, startedAt, expected, ImmutableDictionary<string, GroupResult>.Empty, dryRun, fullVerification);

    /// <summary>What the checks that passed verified this round (the next watermarks).</summary>
    public IReadOnlyList<Checks.ICheckProgress> Progress =>
        Received.Values.SelectMany(g => g.Checks).Where(c => c.Progress is not null).Select(c => c.Progress!).ToList();

    /// <summary>Whether every data-integrity check of this round passed (a full verification only counts then).</summary>
    public bool IntegrityAllPassed =>
        Received.TryGetValue(CheckGroups.DataIntegrity, out var integrity) && integrity.Checks.Count > 0 && integrity.Checks.All(c => c.Status == CheckStatus.Pass);

    public bool HasIntegrityGroup => Expected.Any(g => g.Group == CheckGroups.DataIntegrity);

    public bool IsComplete => Expected.All(g => Received.ContainsKey(g.Group));

    /// <summary>Takes a group's answer; answers for another heartbeat or an unexpected group are ignored.</summary>
    public HeartbeatRound With(GroupResult result) =>
        result.HeartbeatId == Id && Expected.Any(g => g.Group == result.Group) && !Received.ContainsKey(result.Group)
            ? this with { Received = Received.SetItem(result.Group, result) }
            : this;

    /// <summary>The groups of the report, in table order; a group that did not answer is an error group.</summary>
    public IReadOnlyList<GroupReport> Close(TimeSpan groupTimeout) =>
        Expected.Select(g =>
        {
            if (Received.TryGetValue(g.Group, out var result))
            {
                // A retry asked for some checks only: anything else a group sent is not part of this round.
                var asked = Retry ? result.Checks.Where(c => g.CheckIds.Contains(c.Check)).ToList() : result.Checks;
                return new GroupReport(g.Group, Retry ? CheckStatusExtensions.Worst(asked.Select(c => c.Status)) : result.Status, OrderLike(g.CheckIds, asked));
            }
            var detail = $"group {g.Group} did not answer within {groupTimeout.TotalMilliseconds:0} ms";
            var checks = g.CheckIds
                .Select(c => new CheckResult(c, CheckStatus.Error, "no answer", $"group answers within {groupTimeout.TotalMilliseconds:0} ms", detail, (long)groupTimeout.TotalMilliseconds))
                .ToList();
            return new GroupReport(g.Group, CheckStatus.Error, checks);
        }).ToList();

    private static IReadOnlyList<CheckResult> OrderLike(IReadOnlyList<string> order, IReadOnlyList<CheckResult> checks) =>
        checks.OrderBy(c => order.IndexOf(c.Check) is var i && i < 0 ? int.MaxValue : i).ToList();
}

internal static class ListExtensions
{
    public static int IndexOf(this IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
            if (list[i] == value) return i;
        return -1;
    }
}
