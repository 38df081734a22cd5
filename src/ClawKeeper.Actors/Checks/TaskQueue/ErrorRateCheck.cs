using System.Globalization;
using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.TaskQueue;

/// <summary><c>error_rate</c>: failed / finished tasks in the window stays below the limit.</summary>
public sealed class ErrorRateCheck(NpgsqlDataSource? platform, TaskQueueSettings settings) : TaskQueueCheck(platform, settings)
{
    public override string Id => "error_rate";
    protected override string Threshold =>
        $"failed/finished < {Settings.MaxErrorRate.ToString("P1", CultureInfo.InvariantCulture)} over {Seconds(Settings.Window)}";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, """
            select count(*) filter (where status = 'failed')::bigint,
                   count(*)::bigint,
                   coalesce(string_agg(id || ' (' || orchestrator || ': ' || coalesce(left(last_error, 80), 'no error recorded') || ')', '; ' order by completed_at desc)
                            filter (where status = 'failed'), '')
            from tasks
            where status in ('completed', 'failed') and completed_at >= now() - @window
            """, ("window", Settings.Window));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var failed = reader.GetInt64(0);
        var finished = reader.GetInt64(1);
        var failures = reader.GetString(2);
        return Evaluate(failed, finished, failures, Settings.MaxErrorRate, Settings.SampleSize, Threshold);
    }

    /// <summary>Pure: nothing finished is said out loud (warn), never a silent pass.</summary>
    public static CheckOutcome Evaluate(long failed, long finished, string failures, double maxErrorRate, int sampleSize, string threshold)
    {
        if (finished == 0)
            return CheckOutcome.Warn("0 tasks finished in the window", threshold, "no task finished in the window: the error rate cannot be computed");
        var rate = (double)failed / finished;
        var observed = $"{rate.ToString("P1", CultureInfo.InvariantCulture)} ({failed}/{finished} failed)";
        var sample = string.Join("; ", failures.Split("; ", StringSplitOptions.RemoveEmptyEntries).Take(sampleSize));
        return rate < maxErrorRate
            ? CheckOutcome.Pass(observed, threshold, failed == 0 ? "" : "failed: " + sample)
            : CheckOutcome.Fail(observed, threshold, "recent failures: " + sample);
    }
}
