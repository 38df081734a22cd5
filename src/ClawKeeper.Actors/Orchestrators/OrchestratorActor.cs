using Akka.Actor;
using Akka.Event;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>
/// One domain-lead orchestrator with its bounded worker pool. Until the fleet issue lands it claims
/// no tasks: it answers pings with its pool's real occupancy (no worker busy), which is what the
/// heartbeat's reachability and capacity checks read.
/// </summary>
public sealed class OrchestratorActor : ReceiveActor
{
    private readonly OrchestratorDefinition _definition;
    private readonly HashSet<string> _busyWorkers = new();

    public OrchestratorActor(OrchestratorDefinition definition)
    {
        _definition = definition;
        Receive<PingOrchestrator>(_ => Sender.Tell(new OrchestratorPong(_definition.Name, _definition.Workers, _busyWorkers.Count)));
    }

    protected override void PreStart() =>
        Context.GetLogger().Debug("Orchestrator {0} up with {1} workers", _definition.Name, _definition.Workers);

    public static Props Props(OrchestratorDefinition definition) => Akka.Actor.Props.Create(() => new OrchestratorActor(definition));
}
