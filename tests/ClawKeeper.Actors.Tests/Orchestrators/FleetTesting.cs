using System.Collections.Concurrent;
using Akka.Actor;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Platform.Tasks;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Actors.Tests.Orchestrators;

/// <summary>Databases, settings and executors shared by the fleet specs.</summary>
internal static class FleetTesting
{
    public const string TenantA = "t-fleet-a";
    public const string TenantB = "t-fleet-b";

    /// <summary>Fast everything (poll 20 ms, retries after 10 ms, database backoff 20..200 ms), no jitter on retries.</summary>
    public static readonly FleetSettings Fast = FleetSettings.Default with
    {
        PollInterval = TimeSpan.FromMilliseconds(20),
        TaskTimeout = TimeSpan.FromSeconds(30),
        ReleaseGrace = TimeSpan.FromSeconds(10),
        CommandTimeout = TimeSpan.FromSeconds(10),
        Retry = new TaskRetryPolicy(3, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(40), Jitter: 0),
        DatabaseBackoffMin = TimeSpan.FromMilliseconds(20),
        DatabaseBackoffMax = TimeSpan.FromMilliseconds(200),
    };

    public static async Task<string> DatabaseAsync()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database, "INSERT INTO tenants (id, name) VALUES ($1, 'Fleet A'), ($2, 'Fleet B')", TenantA, TenantB);
        return database;
    }

    public static Task InsertAsync(string database, string prefix, string orchestrator, int count) =>
        Sql.ExecuteAsync(database, """
            INSERT INTO tasks (id, tenant_id, orchestrator, kind, created_at)
            SELECT $1 || '-' || lpad(i::text, 4, '0'), CASE WHEN i % 2 = 0 THEN $2 ELSE $3 END, $4, 'reconcile',
                   now() - interval '1 hour' + i * interval '1 millisecond'
            FROM generate_series(1, $5) AS i
            """, prefix, TenantA, TenantB, orchestrator, count);

    public static OrchestratorFleetOptions Options(NpgsqlDataSource source, ITaskExecutor executor, string nodeId, FleetSettings? settings = null) =>
        OrchestratorFleetOptions.Create(source, settings ?? Fast, nodeId, claimTasks: true, executor);

    /// <summary>(status, count) of the tasks whose id starts with <paramref name="prefix"/>.</summary>
    public static async Task<IReadOnlyDictionary<string, long>> StatusCountsAsync(string database, string prefix = "") =>
        (await Sql.RowsAsync(database, "SELECT status, count(*) FROM tasks WHERE id LIKE $1 || '%' GROUP BY status", prefix))
        .ToDictionary(row => (string)row[0]!, row => (long)row[1]!);

    /// <summary>Refuses new connections to the database and ends the open ones: the database is "down" for it.</summary>
    public static async Task TakeDownAsync(string database)
    {
        var name = new NpgsqlConnectionStringBuilder(database).Database!;
        await Sql.ExecuteAsync(await AdminAsync(), $"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false");
        await Sql.ExecuteAsync(await AdminAsync(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name);
    }

    public static async Task BringBackAsync(string database)
    {
        var name = new NpgsqlConnectionStringBuilder(database).Database!;
        await Sql.ExecuteAsync(await AdminAsync(), $"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true");
        // The test's own helper connections were cut too; the fleet copes by itself.
        await using var connection = new NpgsqlConnection(database);
        NpgsqlConnection.ClearPool(connection);
    }

    private static async Task<string> AdminAsync() =>
        new NpgsqlConnectionStringBuilder(await TestPostgres.AdminConnectionStringAsync()) { Pooling = false }.ConnectionString;
}

/// <summary>What <see cref="ScriptedExecutor"/> does with one attempt.</summary>
internal enum Step
{
    /// <summary>Complete at once.</summary>
    Complete,

    /// <summary>Wait for <see cref="ScriptedExecutor.Open"/>, then complete (or stop when cancelled).</summary>
    WaitForGate,

    /// <summary>Run until cancelled (a task that outlives its orchestrator).</summary>
    UntilCancelled,

    /// <summary>Return a retryable failure.</summary>
    Fail,

    /// <summary>Throw.</summary>
    Throw,
}

/// <summary>
/// A deterministic executor: the script says what each attempt does; it counts executions per task,
/// how many run at once, cancellations, and records a violation whenever a task runs twice at once.
/// </summary>
internal sealed class ScriptedExecutor(Func<ClaimedTask, Step> script) : ITaskExecutor
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, int> _running = new();
    private int _inFlight;
    private int _maxInFlight;
    private int _cancelled;

    public ConcurrentDictionary<string, int> Executions { get; } = new();
    public ConcurrentQueue<string> Violations { get; } = new();
    public int InFlight => Volatile.Read(ref _inFlight);
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);
    public int Cancelled => Volatile.Read(ref _cancelled);
    public int TotalExecutions => Executions.Values.Sum();

    public void Open() => _gate.TrySetResult();

    public async Task<TaskExecution> ExecuteAsync(ClaimedTask task, CancellationToken ct)
    {
        Executions.AddOrUpdate(task.Id, 1, (_, n) => n + 1);
        if (_running.AddOrUpdate(task.Id, 1, (_, n) => n + 1) > 1)
            Violations.Enqueue($"{task.Id} attempt {task.Attempt} started while an earlier attempt was still running");
        var now = Interlocked.Increment(ref _inFlight);
        for (var max = _maxInFlight; now > max; max = _maxInFlight)
            if (Interlocked.CompareExchange(ref _maxInFlight, now, max) == max) break;
        try
        {
            switch (script(task))
            {
                case Step.WaitForGate:
                    await _gate.Task.WaitAsync(ct);
                    break;
                case Step.UntilCancelled:
                    await Task.Delay(Timeout.Infinite, ct);
                    break;
                case Step.Fail:
                    return TaskExecution.Failed($"ledger locked for {task.Id}", tokensUsed: 10, cost: 0.0001m);
                case Step.Throw:
                    throw new InvalidOperationException($"executor blew up on {task.Id}");
            }

            return TaskExecution.Completed(tokensUsed: 100 + task.Attempt, cost: 0.001m, outputJson: $$"""{"attempt":{{task.Attempt}}}""");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Interlocked.Increment(ref _cancelled);
            throw;
        }
        finally
        {
            _running.AddOrUpdate(task.Id, 0, (_, n) => n - 1);
            Interlocked.Decrement(ref _inFlight);
        }
    }
}

/// <summary>A parent for a fleet that tells a probe whatever the fleet sends it (escalations).</summary>
internal sealed class FleetParent : ReceiveActor
{
    public FleetParent(Props fleet, IActorRef probe)
    {
        var child = Context.ActorOf(fleet, "orchestrators");
        Receive<GetFleet>(_ => Sender.Tell(child));
        ReceiveAny(message =>
        {
            if (Sender.Equals(child)) probe.Tell(message);
            else child.Forward(message);
        });
    }

    public static Props Props(Props fleet, IActorRef probe) => Akka.Actor.Props.Create(() => new FleetParent(fleet, probe));

    /// <summary>Answered with the fleet's ref.</summary>
    public sealed class GetFleet
    {
        public static readonly GetFleet Instance = new();
    }
}
