using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.TaskQueue;

/// <summary><c>average_task_latency</c>: mean duration of tasks completed in the window stays below the limit.</summary>
public sealed class AverageTaskLatencyCheck(NpgsqlDataSource? platform, TaskQueueSettings settings) : TaskQueueCheck(platform, settings)
{
    public override string Id => "average_task_latency";
    protected override string Threshold => $"mean duration < {Seconds(Settings.MaxAverageLatency)} over {Seconds(Settings.Window)}";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, """
            with done as (
                select orchestrator, extract(epoch from completed_at - started_at)::float8 as seconds
                from tasks
                where status = 'completed' and started_at is not null and completed_at >= now() - @window)
            select (select count(*) from done)::bigint,
                   (select avg(seconds) from done),
                   (select max(seconds) from done),
                   coalesce((select string_agg(orchestrator || ' ' || round(avg_s::numeric, 1) || ' s', ', ' order by avg_s desc)
                             from (select orchestrator, avg(seconds) avg_s from done group by orchestrator order by avg_s desc limit @samples) slowest), '')
            """, ("window", Settings.Window), ("samples", Settings.SampleSize));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var count = reader.GetInt64(0);
        if (count == 0)
            return CheckOutcome.Warn("0 tasks completed in the window", Threshold, "no task completed in the window: the latency cannot be computed");
        var average = reader.GetDouble(1);
        var max = reader.GetDouble(2);
        var slowest = reader.GetString(3);
        var observed = $"mean {average:0.0} s over {count} tasks (max {max:0.0} s)";
        var detail = $"slowest orchestrators: {slowest}";
        return average < Settings.MaxAverageLatency.TotalSeconds
            ? CheckOutcome.Pass(observed, Threshold, detail)
            : CheckOutcome.Fail(observed, Threshold, detail);
    }
}
