using ClawKeeper.Platform.Tasks;
using Npgsql;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>
/// What a working fleet needs. <paramref name="NodeId"/> must be unique per running node (two live
/// nodes with one id would release each other's tasks): each orchestrator claims as
/// <c>&lt;NodeId&gt;/&lt;orchestrator&gt;</c>, and at start releases what that claimer still holds
/// (a previous run of the same node that died). Without options, or with
/// <paramref name="ClaimTasks"/> false, the orchestrators only answer pings.
/// </summary>
/// <param name="EscalateTo">Who gets <see cref="OrchestratorEscalation"/>; null = the fleet's parent. (It is also
/// published on the event stream.)</param>
public sealed record OrchestratorFleetOptions(
    ITaskQueue Queue,
    ITaskExecutor Executor,
    string NodeId,
    bool ClaimTasks,
    FleetSettings Settings,
    Akka.Actor.IActorRef? EscalateTo = null)
{
    /// <summary>The fleet of a node: the queue on the platform database (a role that sees every tenant), the configured executor.</summary>
    /// <param name="claimTasks">Overrides <see cref="FleetSettings.ClaimTasks"/> (the one-shot check passes false).</param>
    public static OrchestratorFleetOptions Create(
        NpgsqlDataSource platform, FleetSettings settings, string nodeId, bool? claimTasks = null, ITaskExecutor? executor = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeId);
        if (nodeId.Contains('/')) throw new ArgumentException("a node id must not contain '/'", nameof(nodeId));
        return new OrchestratorFleetOptions(
            new PostgresTaskQueue(platform, settings.Retry, settings.CommandTimeout),
            executor ?? settings.Executor.Create(),
            nodeId,
            claimTasks ?? settings.ClaimTasks,
            settings);
    }

    /// <summary>A node id that is unique for this process: <c>host:pid:random</c>.</summary>
    public static string NewNodeId() =>
        $"{Environment.MachineName}:{Environment.ProcessId}:{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
}
