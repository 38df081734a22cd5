using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>The supervisor's answer, or why there is none.</summary>
public sealed record SupervisorAnswer(HeartbeatState? State, string? Error)
{
    public bool Answered => State is not null;
}

/// <summary>One member as <c>/cluster/members</c> lists it.</summary>
public sealed record MemberView(string Address, string Status, IReadOnlyList<string> Roles, bool Reachable, bool Self, bool Leader);

/// <summary>This node's view of the cluster; <see cref="Clustered"/> false when the ActorSystem has no cluster provider.</summary>
public sealed record ClusterView(bool Clustered, string? SelfAddress, string? SelfStatus, IReadOnlyList<MemberView> Members)
{
    public static readonly ClusterView NotClustered = new(false, null, null, Array.Empty<MemberView>());

    public static ClusterView Of(ActorSystem system)
    {
        if (((ExtendedActorSystem)system).Provider is not IClusterActorRefProvider) return NotClustered;
        var cluster = Cluster.Get(system);
        var state = cluster.State;
        var unreachable = state.Unreachable.Select(m => m.UniqueAddress).ToHashSet();
        var members = state.Members
            .Select(m => new MemberView(m.Address.ToString(), Wire(m.Status), m.Roles.OrderBy(r => r, StringComparer.Ordinal).ToList(),
                !unreachable.Contains(m.UniqueAddress), m.UniqueAddress.Equals(cluster.SelfUniqueAddress), Equals(state.Leader, m.Address)))
            .ToList();
        return new ClusterView(true, cluster.SelfAddress.ToString(), Wire(cluster.SelfMember.Status), members);
    }

    private static string Wire(MemberStatus status) => status switch
    {
        MemberStatus.WeaklyUp => "weakly_up",
        _ => status.ToString().ToLowerInvariant(),
    };
}

/// <summary>One probe of <c>/health/live</c> or <c>/health/ready</c>: its health-check name, outcome, description and duration.</summary>
public sealed record ReadinessCondition(string Condition, bool Ok, string Detail, string Status = "healthy", double DurationMs = 0, IReadOnlyList<string>? Tags = null);

/// <summary>The answer of <c>/health/live</c> or <c>/health/ready</c>: the health checks of one tag as run by <see cref="HealthCheckService"/>.</summary>
public sealed record Readiness(bool Ready, DateTimeOffset CheckedAt, IReadOnlyList<ReadinessCondition> Conditions, double TotalDurationMs = 0)
{
    /// <summary>Probes in this order first (the order of the conditions a person reads), then the others by name.</summary>
    private static readonly string[] Order =
    [
        "akka.actorsystem", "akka.cluster.join", OpsHealthChecks.ClusterMemberUp, OpsHealthChecks.JournalReachable,
        OpsHealthChecks.SupervisorRecovered, OpsHealthChecks.HeartbeatRecent,
    ];

    public IReadOnlyList<string> Failing => Conditions.Where(c => !c.Ok).Select(c => c.Condition).ToList();

    /// <summary>
    /// Pure. Ready (or live) when no probe is unhealthy (a degraded probe is shown, not fatal: the
    /// mapping of ASP.NET Core's health endpoints) and at least one probe ran.
    /// </summary>
    public static Readiness From(HealthReport report, DateTimeOffset checkedAt)
    {
        var conditions = report.Entries
            .OrderBy(e => Array.IndexOf(Order, e.Key) is var i and >= 0 ? i : Order.Length)
            .ThenBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => new ReadinessCondition(
                e.Key,
                e.Value.Status != HealthStatus.Unhealthy,
                e.Value.Description ?? (e.Value.Exception is { } ex ? OpsText.Describe(ex) : ""),
                e.Value.Status.ToString().ToLowerInvariant(),
                Math.Round(e.Value.Duration.TotalMilliseconds, 1),
                e.Value.Tags.OrderBy(t => t, StringComparer.Ordinal).ToList()))
            .ToList();
        return new Readiness(conditions.Count > 0 && conditions.All(c => c.Ok), checkedAt, conditions, Math.Round(report.TotalDuration.TotalMilliseconds, 1));
    }

    /// <summary>Not ready for a reason outside the probes (no health-check service, nothing registered under the tag).</summary>
    public static Readiness Unavailable(string condition, string detail, DateTimeOffset checkedAt) =>
        new(false, checkedAt, [new ReadinessCondition(condition, false, detail, "unhealthy")]);

    internal static string Age(TimeSpan span)
    {
        if (span < TimeSpan.Zero) span = TimeSpan.Zero;
        if (span.TotalSeconds < 120) return $"{span.TotalSeconds:0}s";
        if (span.TotalMinutes < 120) return $"{span.TotalMinutes:0}m";
        if (span.TotalHours < 48) return $"{span.TotalHours:0.#}h";
        return $"{span.TotalDays:0.#}d";
    }
}

/// <summary>An incident as the page and the metrics show it (from the supervisor's state, else from the latest report).</summary>
public sealed record IncidentView(string DedupKey, string Audience, string? Severity, string? Summary, DateTimeOffset Since, bool Acknowledged, bool Silenced);

/// <summary>
/// What the page and the metrics need of the heartbeat: the latest report (from the supervisor, or
/// from <c>agent_runs</c> when the supervisor does not answer), the write block and open incidents.
/// </summary>
public sealed record HeartbeatView(SupervisorAnswer Supervisor, HeartbeatReport? Latest, string LatestSource, string? LatestError)
{
    /// <summary>The supervisor's current write block (it may have been lifted since the report), else the report's.</summary>
    public WriteBlockReport WriteBlock =>
        Supervisor.State?.WriteBlock.ToReport() ?? Latest?.WriteBlock ?? new WriteBlockReport(false);

    public int ConsecutiveFailures => Supervisor.State?.ConsecutiveFailures ?? Latest?.ConsecutiveFailures ?? 0;

    public IReadOnlyList<IncidentView> OpenIncidents =>
        Supervisor.State is { } state
            ? state.Incidents.Values.Where(i => i.ResolvedAt is null)
                .Select(i => new IncidentView(i.DedupKey, i.Audience, i.Severity, i.Summary, i.OpenedAt, i.Acknowledged, i.Suppressed))
                .OrderBy(i => i.Since).ToList()
            : (Latest?.Incidents ?? Array.Empty<IncidentReport>())
                .Select(i => new IncidentView(i.DedupKey, i.Audience, null, null, i.Since, i.Acknowledged, i.Silenced))
                .OrderBy(i => i.Since).ToList();
}

/// <summary>Talks to the heartbeat supervisor registered under <see cref="HeartbeatSupervisorKey"/>.</summary>
public sealed class HeartbeatAccess
{
    private readonly ActorSystem _system;
    private readonly TimeSpan _askTimeout;

    public HeartbeatAccess(ActorSystem system, TimeSpan askTimeout)
    {
        _system = system;
        _askTimeout = askTimeout;
    }

    public IActorRef? Supervisor => ActorRegistry.For(_system).TryGet<HeartbeatSupervisorKey>(out var actor) ? actor : null;

    public async Task<SupervisorAnswer> StateAsync(CancellationToken cancellationToken)
    {
        if (Supervisor is not { } supervisor)
            return new SupervisorAnswer(null, "no heartbeat supervisor is registered on this node");
        try
        {
            var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, _askTimeout, cancellationToken).ConfigureAwait(false);
            return new SupervisorAnswer(state, null);
        }
        catch (AskTimeoutException)
        {
            return new SupervisorAnswer(null, $"the heartbeat supervisor did not answer within {_askTimeout.TotalSeconds:0.###}s (the singleton is not reachable or is still recovering from the journal)");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SupervisorAnswer(null, $"the heartbeat supervisor did not answer within {_askTimeout.TotalSeconds:0.###}s (the singleton is not reachable or is still recovering from the journal)");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new SupervisorAnswer(null, $"asking the heartbeat supervisor failed: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>The supervisor's latest report; when it does not answer, the newest row of <c>agent_runs</c>.</summary>
    public async Task<HeartbeatView> ViewAsync(OpsQueries queries, CancellationToken cancellationToken)
    {
        var answer = await StateAsync(cancellationToken).ConfigureAwait(false);
        if (answer.State is { } state)
            return new HeartbeatView(answer, state.Latest, "supervisor", null);
        try
        {
            var stored = await queries.LatestReportAsync(cancellationToken).ConfigureAwait(false);
            return new HeartbeatView(answer, stored, stored is null ? "none" : "agent_runs", null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new HeartbeatView(answer, null, "none", $"reading agent_runs failed: {OpsText.Describe(e)}");
        }
    }
}

internal static class OpsText
{
    /// <summary>An exception as one line for a page or a JSON error; never a connection string.</summary>
    public static string Describe(Exception e) => e switch
    {
        Npgsql.PostgresException pg => $"PostgreSQL {pg.SqlState}: {pg.MessageText}",
        Npgsql.NpgsqlException npgsql => $"database unreachable: {npgsql.Message}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };
}
