using Akka.Event;
using Akka.Actor;
using Akka.Cluster;

namespace ClawKeeper.Host.Ops;

/// <summary>A member as Akka Management's Cluster HTTP API lists it.</summary>
public sealed record ClusterMemberJson(string Node, string NodeUid, string Status, IReadOnlyList<string> Roles);

/// <summary>A member some node cannot reach (Akka Management's shape).</summary>
public sealed record ClusterUnreachableMemberJson(string Node, IReadOnlyList<string> ObservedBy);

/// <summary>The answer of <c>GET /cluster/members</c> (Akka Management's <c>ClusterMembers</c>).</summary>
public sealed record ClusterMembersJson(
    string SelfNode,
    IReadOnlyList<ClusterMemberJson> Members,
    IReadOnlyList<ClusterUnreachableMemberJson> Unreachable,
    string? Leader,
    string? Oldest,
    IReadOnlyDictionary<string, string> OldestPerRole);

/// <summary>
/// Akka Management's Cluster HTTP routes (<c>GET /cluster/members</c>, <c>GET|PUT|DELETE
/// /cluster/members/{address}</c>) with its JSON shapes, so tools written for Akka Management work
/// against a ClawKeeper node. The mutating ones take the ops token.
/// </summary>
public sealed partial class OpsEndpoints
{
    private bool Clustered => ((ExtendedActorSystem)_system).Provider is IClusterActorRefProvider;

    /// <summary>Pure: the members of <paramref name="state"/> as Akka Management lists them.</summary>
    public static ClusterMembersJson MembersJson(string selfNode, ClusterEvent.CurrentClusterState state)
    {
        static ClusterMemberJson Member(Member m) =>
            new(m.Address.ToString(), m.UniqueAddress.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Status.ToString(),
                m.Roles.OrderBy(r => r, StringComparer.Ordinal).ToList());

        var up = state.Members.Where(m => m.Status == MemberStatus.Up).OrderBy(m => m, Akka.Cluster.Member.AgeOrdering).ToList();
        var oldestPerRole = up.SelectMany(m => m.Roles).Distinct().OrderBy(r => r, StringComparer.Ordinal)
            .ToDictionary(role => role, role => up.First(m => m.HasRole(role)).Address.ToString());
        return new ClusterMembersJson(
            selfNode,
            state.Members.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal).Select(Member).ToList(),
            // Akka.NET keeps its reachability table internal: the observers are not known here.
            state.Unreachable.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal)
                .Select(m => new ClusterUnreachableMemberJson(m.Address.ToString(), Array.Empty<string>())).ToList(),
            state.Leader?.ToString(),
            up.FirstOrDefault()?.Address.ToString(),
            oldestPerRole);
    }

    /// <summary><c>GET /cluster/members</c>: Akka Management's <c>ClusterMembers</c> (an empty list on a node that is not clustered).</summary>
    public Task<OpsResponse> ClusterMembersAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        if (!Clustered)
            return Task.FromResult(OpsResponse.Json(200, new ClusterMembersJson(
                ((ExtendedActorSystem)_system).Provider.DefaultAddress.ToString(), [], [], null, null, new Dictionary<string, string>())));
        var cluster = Cluster.Get(_system);
        return Task.FromResult(OpsResponse.Json(200, MembersJson(cluster.SelfAddress.ToString(), cluster.State)));
    }

    /// <summary>
    /// The member named by <paramref name="raw"/>: its full address (<c>akka.tcp://clawkeeper@host:port</c>),
    /// <c>system@host:port</c> or <c>host:port</c>, as Akka Management finds it.
    /// </summary>
    private Member? FindMember(string raw)
    {
        if (!Clustered) return null;
        var wanted = raw.Trim().TrimEnd('/');
        return Cluster.Get(_system).State.Members.FirstOrDefault(m =>
        {
            var address = m.Address;
            return address.ToString() == wanted
                   || $"{address.Host}:{address.Port}" == wanted
                   || $"{address.System}@{address.Host}:{address.Port}" == wanted;
        });
    }

    private static OpsResponse Message(int status, string message) => OpsResponse.Json(status, new { message });

    private static OpsResponse MemberNotFound(string raw) => Message(404, $"Member [{Shorten(raw)}] not found");

    /// <summary><c>GET /cluster/members/{address}</c>: Akka Management's <c>ClusterMember</c>, or 404.</summary>
    public Task<OpsResponse> ClusterMemberAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var raw = Parameter(request, "address") ?? "";
        if (FindMember(raw) is not { } member) return Task.FromResult(MemberNotFound(raw));
        var json = MembersJson(Cluster.Get(_system).SelfAddress.ToString(), Cluster.Get(_system).State).Members
            .Single(m => m.Node == member.Address.ToString());
        return Task.FromResult(OpsResponse.Json(200, json));
    }

    /// <summary><c>PUT /cluster/members/{address}</c> with the form field <c>operation=Leave|Down</c> (ops token): Akka Management's member operations.</summary>
    public Task<OpsResponse> ClusterMemberOperationAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var raw = Parameter(request, "address") ?? "";
        if (FindMember(raw) is not { } member) return Task.FromResult(MemberNotFound(raw));
        var operation = Parameter(request, "operation");
        if (operation is null)
            return Task.FromResult(Message(400, "give the form field operation=Leave or operation=Down"));
        var cluster = Cluster.Get(_system);
        var address = member.UniqueAddress.Address;
        switch (operation.ToLowerInvariant())
        {
            case "down":
                _log.Warning("ops: down of {0} ({1}) requested by {2} from {3} (PUT /cluster/members)", address, member.Status, request.Principal, request.Remote);
                cluster.Down(address);
                return Task.FromResult(Message(200, $"Downing {address}"));
            case "leave":
                _log.Warning("ops: leave of {0} requested by {1} from {2} (PUT /cluster/members)", address, request.Principal, request.Remote);
                cluster.Leave(address);
                return Task.FromResult(Message(200, $"Leaving {address}"));
            default:
                return Task.FromResult(Message(400, "Operation not supported"));
        }
    }

    /// <summary><c>DELETE /cluster/members/{address}</c> (ops token): the member leaves (Akka Management's shorthand for operation=Leave).</summary>
    public Task<OpsResponse> ClusterMemberLeaveAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var raw = Parameter(request, "address") ?? "";
        if (FindMember(raw) is not { } member) return Task.FromResult(MemberNotFound(raw));
        var address = member.UniqueAddress.Address;
        _log.Warning("ops: leave of {0} requested by {1} from {2} (DELETE /cluster/members)", address, request.Principal, request.Remote);
        Cluster.Get(_system).Leave(address);
        return Task.FromResult(Message(200, $"Leaving {address}"));
    }
}
