using Npgsql;

namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>
/// The half-open window <c>(After, UpTo]</c> of security events one heartbeat is responsible for.
/// <c>UpTo</c> is this heartbeat's start and <c>After</c> the persisted watermark (by default the
/// last completed heartbeat, <see cref="CheckContext.PreviousCompletedAt"/>), so re-running a
/// window counts the same events and consecutive windows never count one twice.
/// </summary>
public sealed record EventWindow(DateTimeOffset After, DateTimeOffset UpTo, bool FromWatermark)
{
    /// <summary>
    /// <paramref name="watermark"/> is the upper bound of the previous window; null (no heartbeat
    /// completed yet) = a look-back of <paramref name="firstRunLookBack"/> before <c>StartedAt</c>.
    /// A watermark at or after the start gives an empty window (said so in the detail).
    /// </summary>
    public static EventWindow For(DateTimeOffset startedAt, DateTimeOffset? watermark, TimeSpan firstRunLookBack) =>
        watermark is { } previous
            ? new EventWindow(previous.ToUniversalTime(), startedAt.ToUniversalTime(), true)
            : new EventWindow((startedAt - firstRunLookBack).ToUniversalTime(), startedAt.ToUniversalTime(), false);

    public bool IsEmpty => After >= UpTo;

    public string Describe() =>
        $"({After:yyyy-MM-ddTHH:mm:ss.fffZ}, {UpTo:yyyy-MM-ddTHH:mm:ss.fffZ}]" +
        (FromWatermark ? " since the last completed heartbeat" : $" (no completed heartbeat yet: look-back of {PlatformDurations.Describe(UpTo - After)})");
}

/// <summary>Where a window starts: the default is the last completed heartbeat.</summary>
public delegate DateTimeOffset? EventWatermark(CheckContext context);

/// <summary>Security events of one kind in a window, grouped by tenant and source.</summary>
public sealed record SecurityEventGroup(string Tenant, string Source, long Count, DateTimeOffset Latest);

internal static class SecurityEvents
{
    public static readonly EventWatermark LastCompletedHeartbeat = context => context.PreviousCompletedAt;

    public static async Task<IReadOnlyList<SecurityEventGroup>> GroupedAsync(NpgsqlConnection connection, string kind, EventWindow window, CancellationToken cancellationToken)
    {
        var groups = new List<SecurityEventGroup>();
        if (window.IsEmpty) return groups;
        await using var command = new NpgsqlCommand("""
            select coalesce(tenant_id, '(no tenant)'), coalesce(source, '(no source)'),
                   -- A throttled row (the API's refusals) stands for detail.count events.
                   sum(case when jsonb_typeof(detail->'count') = 'number' then greatest((detail->>'count')::bigint, 1) else 1 end)::bigint,
                   max(occurred_at)
            from security_events
            where kind = @kind and occurred_at > @after and occurred_at <= @up_to
            group by 1, 2
            order by 3 desc, 1, 2
            """, connection) { CommandTimeout = 0 };
        command.Parameters.AddWithValue("kind", kind);
        command.Parameters.AddWithValue("after", window.After);
        command.Parameters.AddWithValue("up_to", window.UpTo);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            groups.Add(new SecurityEventGroup(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetFieldValue<DateTimeOffset>(3)));
        return groups;
    }

    /// <summary>"t-acme-bakery/api ×2 (latest 2026-...), ..." — at most <paramref name="sampleSize"/> groups.</summary>
    public static string Describe(IReadOnlyList<SecurityEventGroup> groups, int sampleSize)
    {
        var listed = groups.Take(sampleSize).Select(g => $"{g.Tenant}/{g.Source} ×{g.Count} (latest {g.Latest.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ})");
        var more = groups.Count > sampleSize ? $", and {groups.Count - sampleSize} more tenant/source group(s)" : "";
        return string.Join(", ", listed) + more;
    }
}

internal static class PlatformDurations
{
    public static string Describe(TimeSpan span)
    {
        if (span.TotalDays >= 1 && span.Ticks % TimeSpan.TicksPerDay == 0) return $"{span.TotalDays:0} d";
        if (span.TotalHours >= 1 && span.Ticks % TimeSpan.TicksPerHour == 0) return $"{span.TotalHours:0} h";
        if (span.TotalMinutes >= 1 && span.Ticks % TimeSpan.TicksPerMinute == 0) return $"{span.TotalMinutes:0} min";
        if (span.TotalSeconds >= 1) return $"{span.TotalSeconds:0.#} s";
        return $"{span.TotalMilliseconds:0} ms";
    }
}
