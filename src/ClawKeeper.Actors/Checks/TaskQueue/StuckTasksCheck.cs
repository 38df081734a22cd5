using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.TaskQueue;

/// <summary><c>stuck_tasks</c>: no task has been assigned or running for longer than the limit.</summary>
public sealed class StuckTasksCheck(NpgsqlDataSource? platform, TaskQueueSettings settings) : TaskQueueCheck(platform, settings)
{
    public override string Id => "stuck_tasks";
    protected override string Threshold => $"no task assigned/running for > {Seconds(Settings.StuckAfter)}";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, """
            with in_flight as (
                select id, tenant_id, orchestrator, status, coalesce(started_at, assigned_at, created_at) as since
                from tasks where status in ('assigned', 'running'))
            select (select count(*) from in_flight)::bigint,
                   (select count(*) from in_flight where since < now() - @stuck_after)::bigint,
                   s.id, s.tenant_id, s.orchestrator, s.status, extract(epoch from now() - s.since)::float8
            from (select 1) one
            left join lateral (
                select * from in_flight where since < now() - @stuck_after order by since limit @samples) s on true
            """, ("stuck_after", Settings.StuckAfter), ("samples", Settings.SampleSize));
        long inFlight = 0, stuck = 0;
        var samples = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                inFlight = reader.GetInt64(0);
                stuck = reader.GetInt64(1);
                if (!reader.IsDBNull(2))
                    samples.Add($"{reader.GetString(2)} ({reader.GetString(3)}, {reader.GetString(4)}, {reader.GetString(5)} for {TimeSpan.FromSeconds(reader.GetDouble(6)):d\\.hh\\:mm\\:ss})");
            }

        var observed = $"{stuck} stuck of {inFlight} in flight";
        if (stuck == 0)
            return CheckOutcome.Pass(observed, Threshold, inFlight == 0 ? "no task is assigned or running" : "");
        return CheckOutcome.Fail(observed, Threshold, "oldest: " + string.Join("; ", samples));
    }
}
