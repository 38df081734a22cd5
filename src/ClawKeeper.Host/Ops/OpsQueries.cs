using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using Npgsql;

namespace ClawKeeper.Host.Ops;

/// <summary>Uptime of the platform (<paramref name="Group"/> null) or of one check group over a window: heartbeats counted and passed.</summary>
public sealed record UptimeRow(string Window, string? Group, long Samples, long Passed)
{
    /// <summary>NaN when no heartbeat fell into the window (never a silent 100 %).</summary>
    public double Ratio => Samples == 0 ? double.NaN : (double)Passed / Samples;
}

/// <summary>Mean <c>api_server_responding</c> duration over a window (the API's response time as the heartbeat saw it).</summary>
public sealed record ApiResponseRow(string Window, double AverageMs, long Samples);

/// <summary>Tasks finished in the last hour.</summary>
public sealed record TaskRates(long Completed, long Failed, long Cancelled)
{
    public long Finished => Completed + Failed;

    /// <summary>completed / (completed + failed); NaN when nothing finished.</summary>
    public double CompletionRatio => Finished == 0 ? double.NaN : (double)Completed / Finished;

    /// <summary>failed / (completed + failed), as the <c>error_rate</c> check counts it; NaN when nothing finished.</summary>
    public double ErrorRatio => Finished == 0 ? double.NaN : (double)Failed / Finished;
}

/// <summary>Cost and tokens of one tenant on one UTC day (from <c>agent_runs</c>).</summary>
public sealed record TenantDay(string TenantId, string Day, decimal Cost, long Tokens, long Runs);

/// <summary>One heartbeat in the history chart.</summary>
public sealed record HistoryPoint(string Id, DateTimeOffset StartedAt, long DurationMs, bool Passed, long? ApiResponseMs);

/// <summary>The SQL of the ops surface: heartbeat history and the protocol's metrics, all from the platform database.</summary>
public sealed class OpsQueries
{
    public static readonly IReadOnlyList<(string Name, TimeSpan Span)> UptimeWindows =
        [("24h", TimeSpan.FromHours(24)), ("7d", TimeSpan.FromDays(7)), ("30d", TimeSpan.FromDays(30))];

    public const int MaxHistory = 500;
    private const int CommandTimeoutSeconds = 10;

    // The heartbeat's own rows (ARCHITECTURE.md §1).
    private const string HeartbeatRows = "agent_id = 'clawkeeper' and tenant_id = 'system'";

    private readonly NpgsqlDataSource _platform;

    public OpsQueries(NpgsqlDataSource platform) => _platform = platform;

    /// <summary>The newest <paramref name="limit"/> reports, newest first, as the JSON stored in <c>agent_runs.output</c>.</summary>
    public async Task<IReadOnlyList<string>> HistoryJsonAsync(int limit, CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, $"""
            select output::text from agent_runs
            where {HeartbeatRows} and output is not null
            order by started_at desc, id desc
            limit @limit
            """, ("limit", limit));
        var rows = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            rows.Add(reader.GetString(0));
        return rows;
    }

    /// <summary>The newest report in <c>agent_runs</c>, or null.</summary>
    public async Task<HeartbeatReport?> LatestReportAsync(CancellationToken cancellationToken)
    {
        var newest = await HistoryJsonAsync(1, cancellationToken).ConfigureAwait(false);
        return newest.Count == 0 ? null : System.Text.Json.JsonSerializer.Deserialize<HeartbeatReport>(newest[0], HeartbeatJson.Compact);
    }

    /// <summary>The newest <paramref name="limit"/> heartbeats for the charts, oldest first.</summary>
    public async Task<IReadOnlyList<HistoryPoint>> HistoryPointsAsync(int limit, CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, $"""
            select id, started_at, coalesce(duration_ms, 0),
                   coalesce(output->>'status' = 'pass', status = 'completed'),
                   (select (c->>'durationMs')::bigint
                    from jsonb_array_elements({Groups("output")}) g
                    cross join lateral jsonb_array_elements({Checks("g")}) c
                    where c->>'check' = 'api_server_responding' and c->>'status' in ('pass', 'warn', 'fail')
                    limit 1)
            from agent_runs
            where {HeartbeatRows}
            order by started_at desc, id desc
            limit @limit
            """, ("limit", limit));
        var points = new List<HistoryPoint>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            points.Add(new HistoryPoint(reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetInt64(2), reader.GetBoolean(3),
                reader.IsDBNull(4) ? null : reader.GetInt64(4)));
        points.Reverse();
        return points;
    }

    /// <summary>Uptime (share of passing heartbeats) overall and per group over 24 h, 7 d and 30 d.</summary>
    public async Task<IReadOnlyList<UptimeRow>> UptimeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        // A heartbeat is up when it passed; a group is up when it neither failed nor errored.
        await using var command = Command(connection, $"""
            with runs as (
                select started_at, status, output from agent_runs
                where {HeartbeatRows} and started_at >= now() - interval '30 days'
            ),
            windows (win, span) as (values {WindowValues}),
            samples as (
                select r.started_at, null::text as grp, coalesce(r.output->>'status' = 'pass', r.status = 'completed') as up
                from runs r
                union all
                select r.started_at, g->>'group', coalesce(g->>'status', 'error') not in ('fail', 'error')
                from runs r cross join lateral jsonb_array_elements({Groups("r.output")}) g
            )
            select w.win, s.grp, count(s.started_at), count(s.started_at) filter (where s.up)
            from windows w join samples s on s.started_at >= now() - w.span
            group by w.win, s.grp
            """);
        var rows = new List<UptimeRow>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                rows.Add(new UptimeRow(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3)));

        // Every window is reported overall, also when no heartbeat fell into it (0 samples).
        foreach (var (window, _) in UptimeWindows)
            if (!rows.Any(row => row.Window == window && row.Group is null))
                rows.Add(new UptimeRow(window, null, 0, 0));
        return rows
            .OrderBy(row => UptimeWindows.Select(w => w.Name).ToList().IndexOf(row.Window))
            .ThenBy(row => row.Group is null ? 0 : 1).ThenBy(row => row.Group, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Mean API response time (the <c>api_server_responding</c> check's duration) per window; windows without a measured check are absent.</summary>
    public async Task<IReadOnlyList<ApiResponseRow>> ApiResponseAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, $"""
            with windows (win, span) as (values {WindowValues})
            select w.win, avg((c->>'durationMs')::double precision), count(*)
            from windows w
            join agent_runs r on r.agent_id = 'clawkeeper' and r.tenant_id = 'system' and r.started_at >= now() - w.span
            cross join lateral jsonb_array_elements({Groups("r.output")}) g
            cross join lateral jsonb_array_elements({Checks("g")}) c
            where c->>'check' = 'api_server_responding' and c->>'status' in ('pass', 'warn', 'fail')
            group by w.win
            """);
        var rows = new List<ApiResponseRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            rows.Add(new ApiResponseRow(reader.GetString(0), reader.GetDouble(1), reader.GetInt64(2)));
        return rows.OrderBy(row => UptimeWindows.Select(w => w.Name).ToList().IndexOf(row.Window)).ToList();
    }

    /// <summary>Tasks finished in the last hour by outcome.</summary>
    public async Task<TaskRates> TaskRatesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, """
            select count(*) filter (where status = 'completed'),
                   count(*) filter (where status = 'failed'),
                   count(*) filter (where status = 'cancelled')
            from tasks
            where status in ('completed', 'failed', 'cancelled') and completed_at >= now() - interval '1 hour'
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new TaskRates(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    /// <summary>Cost, tokens and runs per tenant over all of <c>agent_runs</c> (the heartbeat's own rows excluded): the counters of <c>/metrics</c>.</summary>
    public async Task<IReadOnlyList<TenantTotal>> TenantTotalsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, """
            select tenant_id, coalesce(sum(cost), 0), coalesce(sum(tokens_used), 0)::bigint, count(*)
            from agent_runs
            where agent_id <> 'clawkeeper'
            group by tenant_id
            order by tenant_id
            """);
        var rows = new List<TenantTotal>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            rows.Add(new TenantTotal(reader.GetString(0), reader.GetDecimal(1), reader.GetInt64(2), reader.GetInt64(3)));
        return rows;
    }

    /// <summary>Cost and tokens per tenant per UTC day, today and the six days before (the heartbeat's own rows excluded).</summary>
    public async Task<IReadOnlyList<TenantDay>> TenantDaysAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, """
            select tenant_id, to_char((started_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day,
                   sum(cost), sum(tokens_used)::bigint, count(*)
            from agent_runs
            where agent_id <> 'clawkeeper'
              and started_at >= (date_trunc('day', now() at time zone 'UTC') - interval '6 days') at time zone 'UTC'
            group by tenant_id, day
            order by day desc, tenant_id
            """);
        var rows = new List<TenantDay>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            rows.Add(new TenantDay(reader.GetString(0), reader.GetString(1), reader.GetDecimal(2), reader.GetInt64(3), reader.GetInt64(4)));
        return rows;
    }

    /// <summary>Null when the connection sees every tenant; else why the per-tenant figures are incomplete.</summary>
    public async Task<string?> WhyNotAllTenantsVisibleAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await PlatformVisibility.WhyNotAllTenantsVisibleAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    private static string WindowValues =>
        string.Join(", ", UptimeWindows.Select(w => $"('{w.Name}', interval '{(long)w.Span.TotalHours} hours')"));

    // A report without a groups array (a hand-written row) counts as no groups, not as an error.
    private static string Groups(string output) =>
        $"case when jsonb_typeof({output}->'groups') = 'array' then {output}->'groups' else '[]'::jsonb end";

    private static string Checks(string group) =>
        $"case when jsonb_typeof({group}->'checks') = 'array' then {group}->'checks' else '[]'::jsonb end";

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = CommandTimeoutSeconds };
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        return command;
    }
}
