using Akka.Actor;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>
/// Parent of the nine orchestrators (<c>orchestrators/cfo</c>, ...). Its supervisor strategy
/// restarts an orchestrator that crashes; pings are forwarded so the orchestrator answers the
/// asker directly, and a hung orchestrator simply does not answer.
/// </summary>
public sealed class OrchestratorFleetActor : ReceiveActor
{
    public OrchestratorFleetActor(IReadOnlyList<OrchestratorDefinition> orchestrators)
    {
        foreach (var definition in orchestrators)
            Context.ActorOf(OrchestratorActor.Props(definition), definition.Name);

        Receive<PingOrchestrator>(ping =>
        {
            var child = Context.Child(ping.Orchestrator);
            if (child.IsNobody()) Sender.Tell(new UnknownOrchestrator(ping.Orchestrator));
            else child.Forward(ping);
        });
    }

    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(maxNrOfRetries: 10, withinTimeRange: TimeSpan.FromMinutes(1), localOnlyDecider: _ => Directive.Restart);

    public static Props Props(IReadOnlyList<OrchestratorDefinition> orchestrators) =>
        Akka.Actor.Props.Create(() => new OrchestratorFleetActor(orchestrators));
}
