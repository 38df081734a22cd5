using Akka.Actor;

namespace ClawKeeper.Actors.Checks;

/// <summary>
/// <c>checks/</c>: parent of the group actors. A <see cref="RunCheckGroup"/> is forwarded to every
/// group it concerns, so each group answers the supervisor directly. A crashing group is restarted.
/// </summary>
public sealed class CheckGroupsActor : ReceiveActor
{
    public CheckGroupsActor(IReadOnlyList<CheckGroupDefinition> groups, CheckGroupEnvironment environment)
    {
        var children = groups.Select(g => (g.Group, Actor: Context.ActorOf(g.CreateProps(environment), CheckGroups.ActorName(g.Group)))).ToList();
        Receive<RunCheckGroup>(run =>
        {
            foreach (var child in children.Where(c => run.IncludesGroup(c.Group))) child.Actor.Forward(run);
        });
    }

    public static Props Props(IReadOnlyList<CheckGroupDefinition> groups, CheckGroupEnvironment environment) =>
        Akka.Actor.Props.Create(() => new CheckGroupsActor(groups, environment));
}
