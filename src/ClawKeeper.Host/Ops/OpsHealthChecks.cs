using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.DependencyInjection;
using Akka.Hosting;
using ClawKeeper.Actors.Settings;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// The node's liveness and readiness probes, registered as Akka.Hosting health checks (they surface
/// through Microsoft.Extensions.Diagnostics.HealthChecks' <see cref="HealthCheckService"/>, which
/// <c>/health/live</c> and <c>/health/ready</c> run filtered by tag).
/// </summary>
public static class OpsHealthChecks
{
    /// <summary>Tag of the liveness probes (Akka.Hosting's own liveness check uses it too).</summary>
    public const string LivenessTag = "liveness";

    /// <summary>Tag of the readiness probes (Akka.Cluster.Hosting's join check uses it too).</summary>
    public const string ReadinessTag = "ready";

    public const string ClusterMemberUp = "cluster_member_up";
    public const string JournalReachable = "journal_reachable";
    public const string SupervisorRecovered = "heartbeat_supervisor_recovered";
    public const string HeartbeatRecent = "heartbeat_recent";

    /// <summary>
    /// Liveness: the ActorSystem runs (<c>akka.actorsystem</c>, Akka.Hosting). Readiness: joined the
    /// cluster (<c>akka.cluster.join</c>, Akka.Cluster.Hosting; it latches once joined) and is Up now
    /// (<see cref="ClusterMemberUp"/>), the journal database answers (<see cref="JournalReachable"/>),
    /// the heartbeat supervisor answers (<see cref="SupervisorRecovered"/>) and a heartbeat completed
    /// within two intervals (<see cref="HeartbeatRecent"/>). The host must also call
    /// <c>services.AddHealthChecks()</c> so that <see cref="HealthCheckService"/> exists.
    /// </summary>
    public static AkkaConfigurationBuilder WithClawKeeperHealthChecks(this AkkaConfigurationBuilder builder, OpsSettings ops, JournalSettings journal, bool clustered)
    {
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentNullException.ThrowIfNull(journal);
        var ready = new[] { ReadinessTag };
        // A probe that hangs is cut off and reported unhealthy; the probes' own timeouts are shorter.
        var limit = ops.AskTimeout + TimeSpan.FromSeconds(2);

        builder.WithActorSystemLivenessCheck();
        if (clustered)
        {
            builder.WithAkkaClusterReadinessCheck();
            builder.WithHealthCheck(ClusterMemberUp, new ClusterMemberUpCheck(), tags: ready, timeout: limit);
        }
        builder.WithHealthCheck(JournalReachable, new JournalReachableCheck(journal, ops.AskTimeout), tags: ready, timeout: limit);
        builder.WithHealthCheck(SupervisorRecovered, new HeartbeatSupervisorCheck(ops.AskTimeout), tags: ready, timeout: limit);
        builder.WithHealthCheck(HeartbeatRecent, new HeartbeatRecentCheck(ops.AskTimeout, ops.HeartbeatFreshWithin), tags: ready, timeout: limit);
        return builder;
    }

    /// <summary>The health-check service of the host that runs <paramref name="system"/>, or null when it has none.</summary>
    public static HealthCheckService? ServiceOf(ActorSystem system)
    {
        try
        {
            return DependencyResolver.For(system).Resolver.GetService<HealthCheckService>();
        }
        catch (Exception e) when (e is InvalidOperationException or Akka.Configuration.ConfigurationException)
        {
            return null;
        }
    }
}

/// <summary>Ready only while this node is an Up (or WeaklyUp) member; Akka's join check latches, this one follows a leave.</summary>
public sealed class ClusterMemberUpCheck : IAkkaHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(AkkaHealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var view = ClusterView.Of(context.ActorSystem);
        return Task.FromResult(Evaluate(view));
    }

    /// <summary>Pure.</summary>
    public static HealthCheckResult Evaluate(ClusterView view) =>
        !view.Clustered
            ? HealthCheckResult.Healthy("not clustered (this ActorSystem has no cluster provider): condition not applicable")
            : view.SelfStatus is "up" or "weakly_up"
                ? HealthCheckResult.Healthy($"{view.SelfAddress} is {view.SelfStatus}")
                : HealthCheckResult.Unhealthy($"{view.SelfAddress} is {view.SelfStatus}, not up");
}

/// <summary>
/// A real round trip to the configured journal database: a fresh connection (no pool, so a dead
/// server cannot hide behind an idle pooled connection) and a query of the journal table. SQLite:
/// the file is opened read-write without being created.
/// </summary>
public sealed class JournalReachableCheck : IAkkaHealthCheck
{
    private readonly JournalSettings _journal;
    private readonly TimeSpan _timeout;

    public JournalReachableCheck(JournalSettings journal, TimeSpan timeout)
    {
        _journal = journal;
        _timeout = timeout;
    }

    public Task<HealthCheckResult> CheckHealthAsync(AkkaHealthCheckContext context, CancellationToken cancellationToken = default) =>
        ProbeAsync(cancellationToken);

    /// <summary>The probe itself (it needs nothing from the actor system).</summary>
    public async Task<HealthCheckResult> ProbeAsync(CancellationToken cancellationToken = default)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_timeout);
        var watch = Stopwatch.StartNew();
        try
        {
            return _journal.UsesPostgres
                ? await PostgresAsync(watch, limit.Token).ConfigureAwait(false)
                : await SqliteAsync(watch, limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"{Where()}: no answer within {_timeout.TotalSeconds:0.###}s");
        }
        catch (Exception e) when (e is NpgsqlException or SqliteException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy($"{Where()}: {OpsText.Describe(e)}");
        }
    }

    private async Task<HealthCheckResult> PostgresAsync(Stopwatch watch, CancellationToken cancellationToken)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(_timeout.TotalSeconds));
        var builder = new NpgsqlConnectionStringBuilder(_journal.ConnectionString) { Pooling = false, Timeout = seconds, CommandTimeout = seconds };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        // The journal table is created by the plugin at start (auto-initialize); before that, a round trip is the probe.
        // Reachable is not enough: a journal that can be read but not written (a read-only database or
        // server, a standby, INSERT revoked) stops every heartbeat persist, so it is not ready either.
        await using var command = new NpgsqlCommand(
            "select to_regclass('journal') is not null, current_setting('transaction_read_only') = 'on', pg_is_in_recovery(), " +
            "coalesce(has_table_privilege(to_regclass('journal'), 'INSERT'), true), current_user::text", connection);
        bool hasTable, readOnly, standby, mayInsert;
        string user;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            (hasTable, readOnly, standby, mayInsert, user) = (reader.GetBoolean(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetString(4));
        }
        var notWritable = standby ? "the server is a read-only standby (in recovery)"
            : readOnly ? "new transactions are read-only (default_transaction_read_only is on)"
            : !mayInsert ? $"the role {user} may not INSERT into the journal table"
            : null;
        if (notWritable is not null)
            return HealthCheckResult.Unhealthy($"PostgreSQL journal {builder.Host}:{builder.Port}/{builder.Database} can be read but not written: {notWritable}");
        return HealthCheckResult.Healthy($"PostgreSQL journal {builder.Host}:{builder.Port}/{builder.Database} answered in {watch.ElapsedMilliseconds} ms{(hasTable ? "" : " (journal table not created yet)")}");
    }

    private async Task<HealthCheckResult> SqliteAsync(Stopwatch watch, CancellationToken cancellationToken)
    {
        var path = Path.GetFullPath(_journal.SqlitePath);
        if (!File.Exists(path))
            return HealthCheckResult.Unhealthy($"SQLite journal {path}: the file does not exist");
        var builder = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWrite, Pooling = false, DefaultTimeout = Math.Max(1, (int)Math.Ceiling(_timeout.TotalSeconds)) };
        await using var connection = new SqliteConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "select count(*) from sqlite_master";
        await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return HealthCheckResult.Healthy($"SQLite journal {path} answered in {watch.ElapsedMilliseconds} ms");
    }

    private string Where()
    {
        if (!_journal.UsesPostgres) return $"SQLite journal {Path.GetFullPath(_journal.SqlitePath)}";
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(_journal.ConnectionString);
            return $"PostgreSQL journal {builder.Host}:{builder.Port}/{builder.Database}";
        }
        catch (ArgumentException)
        {
            return "PostgreSQL journal";
        }
    }
}

/// <summary>The heartbeat supervisor answers (it answers only once it recovered from the journal).</summary>
public sealed class HeartbeatSupervisorCheck : IAkkaHealthCheck
{
    private readonly TimeSpan _askTimeout;

    public HeartbeatSupervisorCheck(TimeSpan askTimeout) => _askTimeout = askTimeout;

    public async Task<HealthCheckResult> CheckHealthAsync(AkkaHealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var answer = await new HeartbeatAccess(context.ActorSystem, _askTimeout).StateAsync(cancellationToken).ConfigureAwait(false);
        return Evaluate(answer);
    }

    /// <summary>Pure.</summary>
    public static HealthCheckResult Evaluate(SupervisorAnswer answer) =>
        answer.Answered
            ? HealthCheckResult.Healthy("the heartbeat supervisor answered (its state is recovered from the journal)")
            : HealthCheckResult.Unhealthy(answer.Error ?? "the heartbeat supervisor did not answer");
}

/// <summary>A heartbeat completed within two intervals.</summary>
public sealed class HeartbeatRecentCheck : IAkkaHealthCheck
{
    private readonly TimeSpan _askTimeout;
    private readonly TimeSpan _freshWithin;

    public HeartbeatRecentCheck(TimeSpan askTimeout, TimeSpan freshWithin)
    {
        _askTimeout = askTimeout;
        _freshWithin = freshWithin;
    }

    public async Task<HealthCheckResult> CheckHealthAsync(AkkaHealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var answer = await new HeartbeatAccess(context.ActorSystem, _askTimeout).StateAsync(cancellationToken).ConfigureAwait(false);
        return Evaluate(answer, DateTimeOffset.UtcNow, _freshWithin);
    }

    /// <summary>Pure.</summary>
    public static HealthCheckResult Evaluate(SupervisorAnswer supervisor, DateTimeOffset now, TimeSpan freshWithin)
    {
        if (supervisor.State is not { } state)
            return HealthCheckResult.Unhealthy("unknown: the heartbeat supervisor did not answer");
        if (state.LastCompletedAt is not { } at)
            return HealthCheckResult.Unhealthy("no heartbeat has completed yet");
        return now - at <= freshWithin
            ? HealthCheckResult.Healthy($"{state.Latest!.Id} completed {Readiness.Age(now - at)} ago (limit {Readiness.Age(freshWithin)}: two heartbeat intervals)")
            : HealthCheckResult.Unhealthy($"the last heartbeat ({state.Latest!.Id}) completed {Readiness.Age(now - at)} ago, more than {Readiness.Age(freshWithin)} (two heartbeat intervals)");
    }
}
