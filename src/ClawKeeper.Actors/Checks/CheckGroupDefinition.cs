using Akka.Actor;

namespace ClawKeeper.Actors.Checks;

/// <summary>Group ids of the heartbeat table (a contract).</summary>
public static class CheckGroups
{
    public const string SystemHealth = "system_health";
    public const string TaskQueue = "task_queue";
    public const string DataIntegrity = "data_integrity";
    public const string SecurityPosture = "security_posture";
    public const string IntegrationHealth = "integration_health";

    /// <summary>Actor name of a group under <c>checks/</c>: system_health → system-health.</summary>
    public static string ActorName(string group) => group.Replace('_', '-');
}

/// <summary>What the supervisor's children can be given when a group actor is created.</summary>
public sealed record CheckGroupEnvironment(IActorRef Orchestrators);

/// <summary>
/// A check group as the supervisor knows it: its id, the ids of its checks (so a group that
/// never answers can still be reported check by check) and how to create its actor.
/// </summary>
public sealed record CheckGroupDefinition(string Group, IReadOnlyList<string> CheckIds, Func<CheckGroupEnvironment, Props> CreateProps);
