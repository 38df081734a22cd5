using Akka.Actor;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Checks.IntegrationHealth;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Actors.Checks.SystemHealth;
using ClawKeeper.Actors.Checks.TaskQueue;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Integrations;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Hosting;

/// <summary>
/// The real check groups of the heartbeat, wired to the platform database, the API and the
/// provider circuit breakers. The other three groups join here in their own issues.
/// </summary>
public static class HeartbeatComponents
{
    public static readonly IReadOnlyList<string> SystemHealthChecks = new[]
    {
        "api_server_responding", "database_connection", "orchestrators_reachable", "worker_pool_capacity", "circuit_breakers_closed",
    };

    public static readonly IReadOnlyList<string> TaskQueueChecks = new[]
    {
        "queue_depth", "stuck_tasks", "error_rate", "average_task_latency",
    };

    public static readonly IReadOnlyList<string> DataIntegrityChecks = new[]
    {
        "audit_log_continuous", "financial_totals_balance", "no_orphaned_records", "rls_policies_active",
    };

    /// <summary>The four data-integrity checks (also run by <c>writes unblock</c> before it lifts a block).</summary>
    public static IReadOnlyList<IPlatformCheck> DataIntegrity(NpgsqlDataSource? platform, DataIntegritySettings settings) => new IPlatformCheck[]
    {
        new AuditLogContinuousCheck(platform, settings),
        new FinancialTotalsBalanceCheck(platform, settings),
        new NoOrphanedRecordsCheck(platform, settings),
        new RlsPoliciesActiveCheck(platform, settings),
    };

    public static IReadOnlyList<CheckGroupDefinition> CheckGroups(
        ClawKeeperSettings settings, NpgsqlDataSource? platform, HttpClient http, ProviderCircuitBreakers breakers,
        Repairs.IApiServerControl? hostedApi = null) =>
        new[]
        {
            new CheckGroupDefinition(Checks.CheckGroups.SystemHealth, SystemHealthChecks, environment =>
            {
                var pinger = new OrchestratorPinger(environment.Orchestrators, settings.Orchestrators);
                return CheckGroupActor.Props(Checks.CheckGroups.SystemHealth, new IPlatformCheck[]
                {
                    new ApiServerRespondingCheck(http, settings.SystemHealth, hostedApi is null ? null : () => hostedApi.BaseUrl),
                    new DatabaseConnectionCheck(platform, settings.SystemHealth),
                    new OrchestratorsReachableCheck(pinger, settings.SystemHealth),
                    new WorkerPoolCapacityCheck(pinger, settings.SystemHealth),
                    new CircuitBreakersClosedCheck(breakers, settings.SystemHealth),
                });
            }),
            new CheckGroupDefinition(Checks.CheckGroups.TaskQueue, TaskQueueChecks, _ =>
                CheckGroupActor.Props(Checks.CheckGroups.TaskQueue, new IPlatformCheck[]
                {
                    new QueueDepthCheck(platform, settings.TaskQueue),
                    new StuckTasksCheck(platform, settings.TaskQueue),
                    new ErrorRateCheck(platform, settings.TaskQueue),
                    new AverageTaskLatencyCheck(platform, settings.TaskQueue),
                })),
            new CheckGroupDefinition(Checks.CheckGroups.DataIntegrity, DataIntegrityChecks, _ =>
                CheckGroupActor.Props(Checks.CheckGroups.DataIntegrity, DataIntegrity(platform, settings.DataIntegrity))),
            // Security events are counted in (previous heartbeat's start, this start]: contiguous windows, nothing counted twice or skipped.
            new CheckGroupDefinition(Checks.CheckGroups.SecurityPosture, SecurityPostureChecks.Ids, _ =>
                CheckGroupActor.Props(Checks.CheckGroups.SecurityPosture,
                    SecurityPostureChecks.All(platform, http, settings.SecurityPosture, context => context.PreviousStartedAt,
                        hostedApi as IRateLimitProbeSource))),
            new CheckGroupDefinition(Checks.CheckGroups.IntegrationHealth, IntegrationHealthChecks.Ids, _ =>
                CheckGroupActor.Props(Checks.CheckGroups.IntegrationHealth, IntegrationHealthChecks.All(platform, http, breakers, settings.IntegrationHealth))),
        };

    /// <summary>This node's id in <c>tasks.claimed_by</c>: its cluster address (stable across restarts), else a process id.</summary>
    private static string NodeId(ActorSystem system)
    {
        var address = system is ExtendedActorSystem extended ? extended.Provider.DefaultAddress : null;
        return address is { Host: { } host, Port: { } port } ? $"{host}:{port}" : OrchestratorFleetOptions.NewNodeId();
    }

    /// <summary>
    /// The working fleet of one cluster node (<c>/user/fleet</c>, on every node): claims from the queue when
    /// <c>clawkeeper.fleet.claim-tasks</c> is on; repeated crashes escalate to <paramref name="heartbeat"/> (the singleton's proxy).
    /// </summary>
    public static Props NodeFleetProps(ActorSystem system, ClawKeeperSettings settings, NpgsqlDataSource platform, IActorRef heartbeat) =>
        OrchestratorFleetActor.Props(settings.Orchestrators, OrchestratorFleetOptions.Create(platform, settings.Fleet, NodeId(system)) with { EscalateTo = heartbeat });

    /// <summary>Everything the supervisor needs on this node, created against the node's ActorSystem.</summary>
    /// <param name="claimTasks">The supervisor's own fleet (a child) works the queue; ignored with <paramref name="nodeFleets"/>.</param>
    /// <param name="nodeFleets">Every cluster node runs its own fleet (<see cref="NodeFleetProps"/>); the supervisor pings and repairs them through a <see cref="ClusterFleetGateway"/>.</param>
    public static HeartbeatSupervisorOptions SupervisorOptions(
        ActorSystem system, ClawKeeperSettings settings, NpgsqlDataSource platform, HttpClient http, string persistenceId, bool scheduled, bool dryRun,
        bool claimTasks = false, Repairs.IApiServerControl? apiServer = null, bool nodeFleets = false)
    {
        var breakers = new ProviderCircuitBreakers(system.Scheduler, settings.Integrations);
        return new HeartbeatSupervisorOptions(
            persistenceId,
            settings.Heartbeat,
            CheckGroups(settings, platform, http, breakers, apiServer),
            settings.Orchestrators,
            new PlatformHeartbeatRunLog(platform),
            scheduled,
            dryRun,
            new PlatformWriteBlockGuard(platform),
            new IntegrityCadence(settings.DataIntegrity.FullVerificationEvery, settings.DataIntegrity.Timeout, settings.DataIntegrity.BlockWrites),
            settings.Alerts.Delivery(http),
            new PlatformAlertControlSource(platform),
            breakers,
            settings.IntegrationHealth.EscalateOpenBreakerAfterAttempts,
            claimTasks && !nodeFleets ? OrchestratorFleetOptions.Create(platform, settings.Fleet, NodeId(system)) : null,
            apiServer,
            new Repairs.RepairOptions(settings.SystemHealth.OrchestratorPingTimeout, settings.SystemHealth.ApiTimeout, http),
            nodeFleets ? ClusterFleetGateway.Props(settings.SystemHealth.OrchestratorPingTimeout, ClawKeeperAkkaExtensions.NodeRole) : null,
            settings.Heartbeat.SpoolPath,
            settings.Journal.UsesPostgres ? ClawKeeper.Platform.ConnectionStrings.Describe(settings.Journal.ConnectionString) : Path.GetFullPath(settings.Journal.SqlitePath));
    }
}
