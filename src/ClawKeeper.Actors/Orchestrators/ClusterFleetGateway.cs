using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace ClawKeeper.Actors.Orchestrators;

/// <summary>
/// The heartbeat's view of a clustered fleet. Every node runs its own <see cref="OrchestratorFleetActor"/> at
/// <c>/user/fleet</c> (claims use <c>FOR UPDATE SKIP LOCKED</c>: two nodes never take one task); the singleton
/// supervisor talks to this gateway exactly as it would to a local fleet:
/// <list type="bullet">
/// <item><see cref="PingOrchestrator"/> goes to the fleet of every Up member; the answer is one pong with the
/// workers summed over the nodes, and only when the orchestrator answered on every node. A node where it was
/// silent gets no answer at all (the asker's timeout reports the orchestrator as unreachable), the silence is
/// logged with the node, and remembered.</item>
/// <item><see cref="RestartOrchestrators"/> goes only to the nodes where the orchestrator was silent at its last
/// ping; each outcome names the node.</item>
/// </list>
/// </summary>
public sealed class ClusterFleetGateway : ReceiveActor
{
    /// <summary>Name of the per-node fleet under <c>/user</c>.</summary>
    public const string FleetActorName = "fleet";

    private readonly TimeSpan _innerTimeout;
    private readonly TimeSpan _restartTimeout;
    private readonly string? _role;
    private readonly HashSet<Address> _members = new();
    private readonly Dictionary<string, HashSet<Address>> _silent = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <param name="pingTimeout">The askers' ping timeout; each node is given 80 % of it, so the silence is recorded before the asker gives up.</param>
    /// <param name="role">Only members with this role run a fleet (null = every member).</param>
    public ClusterFleetGateway(TimeSpan pingTimeout, string? role)
    {
        _innerTimeout = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, pingTimeout.Ticks * 4 / 5));
        _restartTimeout = pingTimeout + TimeSpan.FromSeconds(3);
        _role = role;

        Receive<ClusterEvent.MemberUp>(up => { if (HasRole(up.Member)) _members.Add(up.Member.Address); });
        Receive<ClusterEvent.MemberWeaklyUp>(up => { if (HasRole(up.Member)) _members.Add(up.Member.Address); });
        Receive<ClusterEvent.MemberExited>(exited => Forget(exited.Member.Address));
        Receive<ClusterEvent.MemberRemoved>(removed => Forget(removed.Member.Address));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<PingOrchestrator>(Ping);
        Receive<PingsGathered>(Gathered);
        Receive<RestartOrchestrators>(Restart);
        Receive<GetOrchestratorStatus>(query => Context.ActorSelection($"/user/{FleetActorName}").Tell(query, Sender));
    }

    public static Props Props(TimeSpan pingTimeout, string? role) =>
        Akka.Actor.Props.Create(() => new ClusterFleetGateway(pingTimeout, role));

    protected override void PreStart() =>
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));

    protected override void PostStop() => Cluster.Get(Context.System).Unsubscribe(Self);

    private bool HasRole(Member member) => _role is null || member.HasRole(_role);

    private void Forget(Address address)
    {
        _members.Remove(address);
        foreach (var nodes in _silent.Values) nodes.Remove(address);
    }

    /// <summary>The fleets to ask: every Up member; before this node has seen itself Up, its own fleet.</summary>
    private IReadOnlyList<Address> Targets() =>
        _members.Count > 0 ? _members.ToList() : new[] { Cluster.Get(Context.System).SelfAddress };

    private ActorSelection FleetOf(Address address) => Context.ActorSelection(new RootActorPath(address) / "user" / FleetActorName);

    private void Ping(PingOrchestrator ping)
    {
        var asker = Sender;
        var timeout = _innerTimeout;
        var asks = Targets().Select(address => (Address: address, Fleet: FleetOf(address))).Select(async target =>
        {
            try
            {
                return new NodeAnswer(target.Address, await target.Fleet.Ask<object>(ping, timeout).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is AskTimeoutException or TaskCanceledException or OperationCanceledException)
            {
                return new NodeAnswer(target.Address, null);
            }
        }).ToList();
        Task.WhenAll(asks).PipeTo(Self, success: answers => new PingsGathered(asker, ping.Orchestrator, answers));
    }

    private void Gathered(PingsGathered gathered)
    {
        var silent = gathered.Answers.Where(a => a.Answer is null).Select(a => a.Node).ToHashSet();
        _silent[gathered.Orchestrator] = silent;
        if (silent.Count > 0)
        {
            _log.Warning("Orchestrator {0} did not answer a ping within {1:0} ms on {2} of {3} nodes: {4}", gathered.Orchestrator,
                _innerTimeout.TotalMilliseconds, silent.Count, gathered.Answers.Count, string.Join(", ", silent.Select(a => a.HostPort())));
            return;
        }
        var answers = gathered.Answers.Select(a => a.Answer!).ToList();
        if (answers.OfType<UnknownOrchestrator>().FirstOrDefault() is { } unknown)
            gathered.Asker.Tell(unknown);
        else if (answers.OfType<OrchestratorRestarting>().FirstOrDefault() is { } restarting)
            gathered.Asker.Tell(restarting);
        else
        {
            var pongs = answers.OfType<OrchestratorPong>().ToList();
            gathered.Asker.Tell(new OrchestratorPong(gathered.Orchestrator, pongs.Sum(p => p.Workers), pongs.Sum(p => p.BusyWorkers)));
        }
    }

    private void Restart(RestartOrchestrators restart)
    {
        var outcomes = new List<OrchestratorRestartOutcome>();
        var byNode = new Dictionary<Address, List<string>>();
        foreach (var name in restart.Orchestrators.Distinct(StringComparer.Ordinal))
        {
            if (!_silent.TryGetValue(name, out var nodes) || nodes.Count == 0)
            {
                outcomes.Add(new OrchestratorRestartOutcome(name, false, "answered on every node at its last ping: not restarted"));
                continue;
            }
            foreach (var node in nodes)
            {
                if (!byNode.TryGetValue(node, out var names)) byNode[node] = names = new List<string>();
                names.Add(name);
            }
            _silent.Remove(name);
        }

        var timeout = _restartTimeout;
        var asks = byNode.Select(kv => (Node: kv.Key, Names: kv.Value, Fleet: FleetOf(kv.Key))).Select(async target =>
        {
            var node = target.Node.HostPort();
            try
            {
                var restarted = await target.Fleet.Ask<OrchestratorsRestarted>(new RestartOrchestrators(target.Names, restart.Reason), timeout).ConfigureAwait(false);
                return restarted.Outcomes.Select(o => o with { Outcome = $"on {node}: {o.Outcome}" });
            }
            catch (Exception ex)
            {
                return target.Names.Select(n => new OrchestratorRestartOutcome(n, false, $"on {node}: its fleet did not answer ({ex.GetBaseException().Message})"));
            }
        }).ToList();
        Task.WhenAll(asks).PipeTo(Sender, success: lists => new OrchestratorsRestarted(outcomes.Concat(lists.SelectMany(l => l)).ToList()));
    }

    private sealed record NodeAnswer(Address Node, object? Answer);

    private sealed record PingsGathered(IActorRef Asker, string Orchestrator, IReadOnlyList<NodeAnswer> Answers);
}
