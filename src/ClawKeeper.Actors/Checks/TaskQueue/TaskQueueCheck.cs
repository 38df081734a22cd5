using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.TaskQueue;

/// <summary>Base of the four task-queue checks.</summary>
public abstract class TaskQueueCheck : PlatformQueryCheck
{
    protected TaskQueueCheck(NpgsqlDataSource? platform, TaskQueueSettings settings) : base(platform) => Settings = settings;

    protected TaskQueueSettings Settings { get; }

    public override TimeSpan Timeout => Settings.Timeout;

    protected override Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken) =>
        EvaluateAsync(connection, cancellationToken);

    protected abstract Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CancellationToken cancellationToken);

    protected static string Seconds(TimeSpan span) => Duration(span);
}
