using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using ClawKeeper.Actors.Orchestrators;
using Xunit;

namespace ClawKeeper.Actors.Tests.Orchestrators;

/// <summary>
/// The supervisor's gateway to the fleets of every node, over real remoting between two ActorSystems on loopback
/// (the messages go through the ClawKeeper serializer; nothing unregistered may travel).
/// </summary>
public sealed class ClusterFleetGatewaySpec : IAsyncLifetime
{
    private static readonly OrchestratorDefinition[] Definitions = { new("cfo", 8), new("support-lead", 6) };
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(3);

    private static readonly Config NodeConfig = ConfigurationFactory.ParseString("""
        akka {
          loglevel = WARNING
          actor {
            provider = cluster
            serializers.clawkeeper-json = "ClawKeeper.Actors.Serialization.ClawKeeperSerializer, ClawKeeper.Actors"
            serialization-bindings { "ClawKeeper.Actors.Serialization.IClawKeeperMessage, ClawKeeper.Actors" = clawkeeper-json }
            serialization-settings.allow-unregistered-types = false
          }
          remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
          cluster { roles = [clawkeeper], min-nr-of-members = 1 }
        }
        """);

    private ActorSystem _a = null!;
    private ActorSystem _b = null!;

    public async Task InitializeAsync()
    {
        _a = ActorSystem.Create("clawkeeper", NodeConfig);
        _b = ActorSystem.Create("clawkeeper", NodeConfig);
        var seed = Cluster.Get(_a).SelfAddress;
        Cluster.Get(_a).Join(seed);
        Cluster.Get(_b).Join(seed);
        await Eventually(() => Cluster.Get(_a).State.Members.Count(m => m.Status == MemberStatus.Up) == 2
                               && Cluster.Get(_b).State.Members.Count(m => m.Status == MemberStatus.Up) == 2, "both nodes Up on both nodes");
    }

    public async Task DisposeAsync()
    {
        await Task.WhenAll(_b.Terminate(), _a.Terminate());
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("still not true after 30 s: " + what);
            await Task.Delay(50);
        }
    }

    /// <summary>A gateway that has seen both members (it learns them from cluster events).</summary>
    private async Task<IActorRef> GatewayAsync()
    {
        var gateway = _a.ActorOf(ClusterFleetGateway.Props(PingTimeout, "clawkeeper"), "gateway");
        // Its first answered ping proves it asks both fleets: the workers are summed over the nodes.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var answer = await gateway.Ask<object>(new PingOrchestrator("support-lead"), PingTimeout + TimeSpan.FromSeconds(1));
            if (answer is OrchestratorPong { Workers: > 6 }) return gateway;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the gateway never asked both nodes: {answer}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_ping_is_answered_once_with_the_workers_of_every_node_summed()
    {
        _a.ActorOf(OrchestratorFleetActor.Props(Definitions), ClusterFleetGateway.FleetActorName);
        _b.ActorOf(OrchestratorFleetActor.Props(Definitions), ClusterFleetGateway.FleetActorName);
        var gateway = await GatewayAsync();

        Assert.Equal(new OrchestratorPong("cfo", 16, 0), await gateway.Ask<object>(new PingOrchestrator("cfo"), PingTimeout + TimeSpan.FromSeconds(1)));
        Assert.Equal(new UnknownOrchestrator("chief-fun-officer"), await gateway.Ask<object>(new PingOrchestrator("chief-fun-officer"), PingTimeout + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task An_orchestrator_silent_on_one_node_is_unreachable_and_only_that_node_restarts_it()
    {
        var fleetA = _a.ActorOf(OrchestratorFleetActor.Props(Definitions), ClusterFleetGateway.FleetActorName);
        var fleetB = _b.ActorOf(Props.Create(() => new FleetWithAHungOrchestrator("cfo")), ClusterFleetGateway.FleetActorName);
        var gateway = await GatewayAsync();

        // Silent on node B: no answer at all (the check reports it as not reachable), although node A's cfo answers.
        await Assert.ThrowsAsync<AskTimeoutException>(() => gateway.Ask<object>(new PingOrchestrator("cfo"), PingTimeout));

        var restarted = await gateway.Ask<OrchestratorsRestarted>(new RestartOrchestrators(new[] { "cfo", "support-lead" }, "test: orchestrators_reachable"), TimeSpan.FromSeconds(10));
        var nodeB = Cluster.Get(_b).SelfAddress.HostPort();
        var cfo = Assert.Single(restarted.Outcomes, o => o.Orchestrator == "cfo");
        Assert.True(cfo.Restarted);
        Assert.Equal($"on {nodeB}: restarted as cfo-1", cfo.Outcome);
        var support = Assert.Single(restarted.Outcomes, o => o.Orchestrator == "support-lead");
        Assert.False(support.Restarted);
        Assert.Contains("answered on every node", support.Outcome);

        // Node B got exactly that request; node A's healthy cfo was left alone (still its first incarnation).
        var received = await fleetB.Ask<IReadOnlyList<string>>(FleetWithAHungOrchestrator.Received.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal(new[] { "cfo" }, received);
        Assert.Equal(1, (await fleetA.Ask<OrchestratorStatus>(new GetOrchestratorStatus("cfo"), TimeSpan.FromSeconds(5))).Incarnation);

        // After the restart both nodes answer again.
        Assert.Equal(new OrchestratorPong("cfo", 8 + 4, 1), await gateway.Ask<object>(new PingOrchestrator("cfo"), PingTimeout + TimeSpan.FromSeconds(1)));
    }

    /// <summary>Node B's fleet as the gateway sees it when one orchestrator hangs: that one never answers until restarted.</summary>
    private sealed class FleetWithAHungOrchestrator : ReceiveActor
    {
        public sealed class Received
        {
            public static readonly Received Instance = new();
        }

        private readonly List<string> _restartRequests = new();

        public FleetWithAHungOrchestrator(string hung)
        {
            var silent = hung;
            Receive<PingOrchestrator>(ping =>
            {
                if (ping.Orchestrator != silent) Sender.Tell(new OrchestratorPong(ping.Orchestrator, 4, 1));
            });
            Receive<RestartOrchestrators>(restart =>
            {
                _restartRequests.AddRange(restart.Orchestrators);
                Sender.Tell(new OrchestratorsRestarted(restart.Orchestrators.Select(name => new OrchestratorRestartOutcome(name, true, $"restarted as {name}-1")).ToList()));
                if (restart.Orchestrators.Contains(silent)) silent = "";
            });
            Receive<Received>(_ => Sender.Tell((IReadOnlyList<string>)_restartRequests.ToList()));
        }
    }
}
