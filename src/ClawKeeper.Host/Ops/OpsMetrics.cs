using System.Text;
using Akka.Actor;
using Akka.Cluster;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using Prometheus;

namespace ClawKeeper.Host.Ops;

/// <summary>Cost and tokens of one tenant since its first run (sums over <c>agent_runs</c>, the heartbeat's own rows excluded).</summary>
public sealed record TenantTotal(string TenantId, decimal Cost, long Tokens, long Runs);

/// <summary>What the platform-wide series are computed from; a part that could not be read is null and <see cref="PlatformError"/> says why.</summary>
public sealed record MetricsInput(
    HeartbeatView Heartbeat,
    DateTimeOffset Now,
    IReadOnlyList<UptimeRow>? Uptime,
    IReadOnlyList<ApiResponseRow>? ApiResponse,
    TaskRates? Tasks,
    IReadOnlyList<TenantTotal>? Tenants,
    string? Visibility,
    string? PlatformError);

/// <summary>
/// <c>/metrics</c> of a node (docs/metrics.md names every series). One method, <see cref="WriteAsync"/>,
/// produces the exposition and takes no HTTP-server type, so any server can serve it.
/// <para>
/// Node-local series (the API this node hosts, process and .NET runtime, the heartbeat rounds this
/// node ran, <c>clawkeeper_ops_source_up</c>) come from every node. The platform-wide series (the
/// latest heartbeat, escalation, write block, uptime, tasks, cost and tokens per tenant) are exported
/// only by the node that hosts the heartbeat singleton (<c>clawkeeper_metrics_platform_exporter</c> = 1),
/// so a <c>sum()</c> across the nodes counts each once; the other nodes do not even query for them.
/// </para>
/// </summary>
public sealed class OpsMetrics
{
    public const string SingletonManagerName = "heartbeat";

    private readonly NodeMetrics _node;
    private readonly SemaphoreSlim _scrape = new(1, 1);
    private readonly Func<CancellationToken, Task<bool>> _exportsPlatform;
    private readonly Func<CancellationToken, Task<HeartbeatView>> _view;
    private readonly Func<CancellationToken, Task<MetricsInput>> _platform;

    private readonly SnapshotGauge _sourceUp;
    private readonly SnapshotGauge _exporter;
    private readonly SnapshotGauge _lastStatus;
    private readonly SnapshotGauge _groupStatus;
    private readonly SnapshotGauge _checkStatus;
    private readonly SnapshotGauge _lastCompleted;
    private readonly SnapshotGauge _age;
    private readonly SnapshotGauge _consecutiveFailures;
    private readonly SnapshotGauge _writeBlock;
    private readonly SnapshotGauge _escalationOpen;
    private readonly SnapshotGauge _incidentsOpen;
    private readonly SnapshotGauge _incidentsUnacknowledged;
    private readonly SnapshotCounter _heartbeatsRecorded;
    private readonly SnapshotGauge _uptimeRatio;
    private readonly SnapshotGauge _uptimeSamples;
    private readonly SnapshotGauge _groupUptimeRatio;
    private readonly SnapshotGauge _groupUptimeSamples;
    private readonly SnapshotGauge _apiResponseAvg;
    private readonly SnapshotGauge _tasksFinished;
    private readonly SnapshotGauge _completionRatio;
    private readonly SnapshotGauge _errorRatio;
    private readonly SnapshotCounter _tenantCost;
    private readonly SnapshotCounter _tenantTokens;
    private readonly SnapshotCounter _tenantRuns;
    private readonly SnapshotGauge _allTenantsVisible;

    /// <summary>
    /// <paramref name="exportsPlatform"/>: whether this node exports the platform-wide series now;
    /// <paramref name="view"/>: the heartbeat as the supervisor (or agent_runs) tells it;
    /// <paramref name="platform"/>: the platform-wide figures (read only when exporting).
    /// </summary>
    public OpsMetrics(
        NodeMetrics node,
        Func<CancellationToken, Task<bool>> exportsPlatform,
        Func<CancellationToken, Task<HeartbeatView>> view,
        Func<HeartbeatView, CancellationToken, Task<MetricsInput>> platform)
    {
        _node = node;
        _exportsPlatform = exportsPlatform;
        _view = view;
        _platform = async ct => await platform(await view(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        var f = node.Factory;
        _sourceUp = new SnapshotGauge(f, "clawkeeper_ops_source_up", "1 when this node's ops surface could read the source (supervisor: the heartbeat singleton answered; platform_db: the SQL behind uptime, tasks and cost succeeded; only on the exporting node).", "source");
        _exporter = new SnapshotGauge(f, "clawkeeper_metrics_platform_exporter", "1 on the node that hosts the heartbeat singleton and exports the platform-wide series; 0 on the others.");
        _lastStatus = new SnapshotGauge(f, "clawkeeper_heartbeat_last_status", "Outcome of the latest heartbeat: 1 for its status, 0 for the other.", "status");
        _groupStatus = new SnapshotGauge(f, "clawkeeper_heartbeat_group_status", "Status of each check group in the latest heartbeat: 1 for its status, 0 for the others.", "group", "status");
        _checkStatus = new SnapshotGauge(f, "clawkeeper_heartbeat_check_status", "Status of each check in the latest heartbeat: 1 for its status, 0 for the others.", "group", "check", "status");
        _lastCompleted = new SnapshotGauge(f, "clawkeeper_heartbeat_last_completed_timestamp_seconds", "When the latest heartbeat completed (Unix time); the dead-man signal: alert when time() minus this grows past the cadence.");
        _age = new SnapshotGauge(f, "clawkeeper_heartbeat_age_seconds", "Seconds since the latest heartbeat completed, at scrape time.");
        _consecutiveFailures = new SnapshotGauge(f, "clawkeeper_heartbeat_consecutive_failures", "Consecutive failed heartbeats (super_admin is alerted at clawkeeper.heartbeat.escalate-after-failures).");
        _writeBlock = new SnapshotGauge(f, "clawkeeper_write_block_active", "1 while writes to the financial tables are blocked by an integrity failure.");
        _escalationOpen = new SnapshotGauge(f, "clawkeeper_escalation_open", "1 while the escalation to super_admin (consecutive failed heartbeats) is raised and not resolved.");
        _incidentsOpen = new SnapshotGauge(f, "clawkeeper_incidents_open", "Open incidents (alerts raised and not resolved).");
        _incidentsUnacknowledged = new SnapshotGauge(f, "clawkeeper_incidents_unacknowledged", "Open incidents nobody acknowledged yet.");
        _heartbeatsRecorded = new SnapshotCounter(f, "clawkeeper_heartbeats_recorded_total", "Heartbeats the supervisor has recorded in its journal.");
        _uptimeRatio = new SnapshotGauge(f, "clawkeeper_uptime_ratio", "Share of passing heartbeats over the window (NaN: no heartbeat in the window).", "window");
        _uptimeSamples = new SnapshotGauge(f, "clawkeeper_uptime_samples", "Heartbeats counted in clawkeeper_uptime_ratio.", "window");
        _groupUptimeRatio = new SnapshotGauge(f, "clawkeeper_group_uptime_ratio", "Share of heartbeats in which the group neither failed nor errored, over the window.", "group", "window");
        _groupUptimeSamples = new SnapshotGauge(f, "clawkeeper_group_uptime_samples", "Heartbeats counted in clawkeeper_group_uptime_ratio.", "group", "window");
        _apiResponseAvg = new SnapshotGauge(f, "clawkeeper_api_response_time_seconds_avg", "Mean response time of the API's GET /health as measured by api_server_responding, over the window.", "window");
        _tasksFinished = new SnapshotGauge(f, "clawkeeper_tasks_finished", "Tasks finished in the last hour by outcome.", "status", "window");
        _completionRatio = new SnapshotGauge(f, "clawkeeper_task_completion_ratio", "completed / (completed + failed) tasks in the last hour (NaN: none finished).", "window");
        _errorRatio = new SnapshotGauge(f, "clawkeeper_task_error_ratio", "failed / (completed + failed) tasks in the last hour, as the error_rate check counts (NaN: none finished).", "window");
        _tenantCost = new SnapshotCounter(f, "clawkeeper_tenant_cost_total", "Agent cost per tenant (sum of agent_runs.cost, the heartbeat's own rows excluded); use increase() for a period.", "tenant_id");
        _tenantTokens = new SnapshotCounter(f, "clawkeeper_tenant_tokens_total", "Tokens used per tenant (sum of agent_runs.tokens_used); use increase() for a period.", "tenant_id");
        _tenantRuns = new SnapshotCounter(f, "clawkeeper_tenant_agent_runs_total", "Agent runs per tenant recorded in agent_runs.", "tenant_id");
        _allTenantsVisible = new SnapshotGauge(f, "clawkeeper_platform_all_tenants_visible", "1 when the ops connection sees every tenant (superuser or BYPASSRLS); 0 = per-tenant figures are incomplete.");
    }

    public static readonly IReadOnlyList<CheckStatus> Statuses = Enum.GetValues<CheckStatus>();

    /// <summary>The exposition (Prometheus text format 0.0.4) of this node, written to <paramref name="output"/>.</summary>
    public async Task WriteAsync(Stream output, CancellationToken cancellationToken)
    {
        await _scrape.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (await _exportsPlatform(cancellationToken).ConfigureAwait(false))
            {
                _exporter.Set(1);
                Apply(await _platform(cancellationToken).ConfigureAwait(false));
            }
            else
            {
                _exporter.Set(0);
                ClearPlatform();
            }
            await _node.ExportAsync(output, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _scrape.Release();
        }
    }

    /// <summary><see cref="WriteAsync"/> as a string.</summary>
    public async Task<string> RenderAsync(CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Sets the platform-wide series from <paramref name="input"/>; parts that could not be read are left out (never a stale or invented value).</summary>
    public void Apply(MetricsInput input)
    {
        var heartbeat = input.Heartbeat;
        var report = heartbeat.Latest;
        _sourceUp.Update([(["supervisor"], heartbeat.Supervisor.Answered ? 1 : 0), (["platform_db"], input.PlatformError is null ? 1 : 0)]);

        if (report is not null)
        {
            _lastStatus.Update(new[] { HeartbeatStatus.Pass, HeartbeatStatus.Fail }
                .Select(s => (new[] { s == HeartbeatStatus.Pass ? "pass" : "fail" }, report.Status == s ? 1.0 : 0.0)));
            _groupStatus.Update(report.Groups.SelectMany(g => Statuses.Select(s => (new[] { g.Group, s.ToWire() }, g.Status == s ? 1.0 : 0.0))));
            _checkStatus.Update(report.AllChecks().SelectMany(x => Statuses.Select(s => (new[] { x.Group, x.Check.Check, s.ToWire() }, x.Check.Status == s ? 1.0 : 0.0))));
            _lastCompleted.Set(report.CompletedAt.ToUnixTimeMilliseconds() / 1000.0);
            _age.Set(Math.Max(0, (input.Now - report.CompletedAt).TotalSeconds));
        }
        else
        {
            foreach (var gauge in new[] { _lastStatus, _groupStatus, _checkStatus, _lastCompleted, _age }) gauge.Clear();
        }

        if (report is not null || heartbeat.Supervisor.Answered)
        {
            _consecutiveFailures.Set(heartbeat.ConsecutiveFailures);
            _writeBlock.Set(heartbeat.WriteBlock.Active ? 1 : 0);
            var incidents = heartbeat.OpenIncidents;
            var escalated = incidents.Any(i => i.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey);
            _escalationOpen.Set(escalated ? 1 : 0);
            _incidentsOpen.Set(incidents.Count);
            _incidentsUnacknowledged.Set(incidents.Count(i => !i.Acknowledged));
        }
        else
        {
            foreach (var gauge in new[] { _consecutiveFailures, _writeBlock, _escalationOpen, _incidentsOpen, _incidentsUnacknowledged }) gauge.Clear();
        }

        if (heartbeat.Supervisor.State is { } state) _heartbeatsRecorded.Update([([], state.HeartbeatsRecorded)]);
        else _heartbeatsRecorded.Clear();

        var overall = input.Uptime?.Where(u => u.Group is null).ToList() ?? [];
        var groups = input.Uptime?.Where(u => u.Group is not null).ToList() ?? [];
        _uptimeRatio.Update(overall.Select(u => (new[] { u.Window }, u.Ratio)));
        _uptimeSamples.Update(overall.Select(u => (new[] { u.Window }, (double)u.Samples)));
        _groupUptimeRatio.Update(groups.Select(u => (new[] { u.Group!, u.Window }, u.Ratio)));
        _groupUptimeSamples.Update(groups.Select(u => (new[] { u.Group!, u.Window }, (double)u.Samples)));
        _apiResponseAvg.Update((input.ApiResponse ?? []).Select(a => (new[] { a.Window }, a.AverageMs / 1000.0)));

        if (input.Tasks is { } tasks)
        {
            _tasksFinished.Update([(["completed", "1h"], tasks.Completed), (["failed", "1h"], tasks.Failed), (["cancelled", "1h"], tasks.Cancelled)]);
            _completionRatio.Update([(["1h"], tasks.CompletionRatio)]);
            _errorRatio.Update([(["1h"], tasks.ErrorRatio)]);
        }
        else
        {
            _tasksFinished.Clear();
            _completionRatio.Clear();
            _errorRatio.Clear();
        }

        if (input.Tenants is { } tenants)
        {
            _tenantCost.Update(tenants.Select(t => (new[] { t.TenantId }, (double)t.Cost)));
            _tenantTokens.Update(tenants.Select(t => (new[] { t.TenantId }, (double)t.Tokens)));
            _tenantRuns.Update(tenants.Select(t => (new[] { t.TenantId }, (double)t.Runs)));
        }
        else if (input.PlatformError is not null)
        {
            // Unreadable now: keep the counters' last totals out of the exposition rather than invent a value.
            _tenantCost.Clear();
            _tenantTokens.Clear();
            _tenantRuns.Clear();
        }

        if (input.PlatformError is null) _allTenantsVisible.Set(input.Visibility is null ? 1 : 0);
        else _allTenantsVisible.Clear();
    }

    private void ClearPlatform()
    {
        foreach (var gauge in new[]
                 {
                     _sourceUp, _lastStatus, _groupStatus, _checkStatus, _lastCompleted, _age, _consecutiveFailures, _writeBlock, _escalationOpen,
                     _incidentsOpen, _incidentsUnacknowledged, _uptimeRatio, _uptimeSamples, _groupUptimeRatio, _groupUptimeSamples,
                     _apiResponseAvg, _tasksFinished, _completionRatio, _errorRatio, _allTenantsVisible,
                 })
            gauge.Clear();
        _heartbeatsRecorded.Clear();
        _tenantCost.Clear();
        _tenantTokens.Clear();
        _tenantRuns.Clear();
    }

    /// <summary>
    /// Whether this node hosts the heartbeat supervisor: outside a cluster the registered supervisor is
    /// local; in a cluster a supervisor registered directly (not through the singleton's proxy) is local,
    /// else the singleton runs where Akka's singleton manager puts it: on the oldest Up member with the
    /// ClawKeeper role (during a hand-over two nodes may briefly disagree; the next scrape settles it).
    /// </summary>
    public static Task<bool> HostsSupervisorAsync(ActorSystem system, IActorRef? registered, CancellationToken cancellationToken)
    {
        if (registered is null) return Task.FromResult(false);
        if (((ExtendedActorSystem)system).Provider is not Akka.Cluster.IClusterActorRefProvider) return Task.FromResult(true);
        if (registered.Path.Name != SingletonManagerName + "-proxy") return Task.FromResult(registered.Path.Address.HasLocalScope);
        var cluster = Cluster.Get(system);
        var oldest = cluster.State.Members
            .Where(m => m.Status == MemberStatus.Up && m.HasRole(ClawKeeper.Actors.Hosting.ClawKeeperAkkaExtensions.NodeRole))
            .OrderBy(m => m, Member.AgeOrdering)
            .FirstOrDefault();
        return Task.FromResult(oldest is not null && oldest.Address.Equals(cluster.SelfAddress));
    }
}

/// <summary>
/// Observes every heartbeat round this node runs (the supervisor publishes <see cref="HeartbeatCompleted"/>
/// on the local event stream) into histograms: round duration and each check's duration by group and
/// check. Retry rounds observe only the checks they re-ran.
/// </summary>
public sealed class HeartbeatRoundMetrics : ReceiveActor
{
    /// <summary>Upper bounds (seconds) of the check and round duration buckets: 5 ms to 2 min.</summary>
    public static readonly double[] DurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    public HeartbeatRoundMetrics(NodeMetrics node)
    {
        var round = node.Factory.CreateHistogram("clawkeeper_heartbeat_duration_seconds",
            "Duration of the heartbeat rounds this node ran (start to the last group's answer), by kind (full: every check; retry: only the failed ones).",
            ["kind"], new HistogramConfiguration { Buckets = DurationBuckets });
        var check = node.Factory.CreateHistogram("clawkeeper_heartbeat_check_duration_seconds",
            "Duration of each check run in the heartbeat rounds this node ran, by group and check.",
            ["group", "check"], new HistogramConfiguration { Buckets = DurationBuckets });
        var completed = node.Factory.CreateCounter("clawkeeper_heartbeats_completed_total",
            "Heartbeat rounds this node ran, by outcome.", ["status"]);
        Receive<HeartbeatCompleted>(message =>
        {
            var report = message.Report;
            if (report.DryRun) return;
            round.WithLabels(report.Rechecked is null ? "full" : "retry").Observe(report.DurationMs / 1000.0);
            completed.WithLabels(report.Status == HeartbeatStatus.Pass ? "pass" : "fail").Inc();
            var rechecked = report.Rechecked is { } r ? new HashSet<string>(r, StringComparer.Ordinal) : null;
            foreach (var (group, result) in report.AllChecks())
                if (rechecked is null || rechecked.Contains($"{group}/{result.Check}"))
                    check.WithLabels(group, result.Check).Observe(result.DurationMs / 1000.0);
        });
    }

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(HeartbeatCompleted));

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);
}
