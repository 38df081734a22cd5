namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>An ordered pair of the isolation probe: acting as <c>Viewer</c>, look for (and try to write) <c>Target</c>'s rows.</summary>
public sealed record TenantPair(string Viewer, string Target)
{
    public override string ToString() => $"{Viewer}→{Target}";
}

/// <summary>
/// Rotation of the isolation probe over the n(n-1) ordered tenant pairs. The pairs are listed by
/// offset (every tenant once as viewer, then the next offset, ...), and round <c>r</c> takes the
/// <c>k</c> pairs starting at <c>r·k</c>, cyclically: every ordered pair is probed within
/// <c>ceil(n(n-1)/k)</c> consecutive rounds, and consecutive pairs have different viewers.
/// </summary>
public static class IsolationPairs
{
    public static IReadOnlyList<TenantPair> All(IReadOnlyList<string> tenants)
    {
        var sorted = tenants.Distinct(StringComparer.Ordinal).OrderBy(t => t, StringComparer.Ordinal).ToList();
        var n = sorted.Count;
        var pairs = new List<TenantPair>(n * Math.Max(0, n - 1));
        for (var offset = 1; offset < n; offset++)
            for (var i = 0; i < n; i++)
                pairs.Add(new TenantPair(sorted[i], sorted[(i + offset) % n]));
        return pairs;
    }

    public static IReadOnlyList<TenantPair> ForRound(IReadOnlyList<string> tenants, long round, int pairsPerRound)
    {
        var all = All(tenants);
        if (all.Count == 0 || pairsPerRound <= 0) return Array.Empty<TenantPair>();
        var take = Math.Min(pairsPerRound, all.Count);
        var start = (int)(((round % all.Count) * (take % all.Count) % all.Count + all.Count) % all.Count);
        return Enumerable.Range(0, take).Select(i => all[(start + i) % all.Count]).ToList();
    }

    /// <summary>A stable, non-negative number from a heartbeat id (FNV-1a), to start the rotation somewhere.</summary>
    public static long StableRound(string heartbeatId)
    {
        unchecked
        {
            var hash = 14695981039346656037UL;
            foreach (var c in heartbeatId)
            {
                hash ^= c;
                hash *= 1099511628211UL;
            }
            return (long)(hash >> 1);
        }
    }
}
