using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Actors.Serialization;

/// <summary>Marker of everything that is persisted or may cross the cluster: bound to <see cref="ClawKeeperSerializer"/>.</summary>
public interface IClawKeeperMessage;

/// <summary>
/// System.Text.Json with versioned string manifests. A manifest names a shape, not a CLR type:
/// when a shape changes, add <c>name.v2</c> and keep reading <c>name.v1</c> (upcast on read), so
/// events written by today's build are read by tomorrow's.
/// </summary>
public sealed class ClawKeeperSerializer : SerializerWithStringManifest
{
    public const int SerializerIdentifier = 4242;
    public const string SerializerName = "clawkeeper-json";

    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    private static readonly IReadOnlyDictionary<Type, string> ManifestByType = new Dictionary<Type, string>
    {
        [typeof(HeartbeatRecorded)] = "heartbeat-recorded.v1",
        [typeof(HeartbeatRunLogged)] = "heartbeat-run-logged.v1",
        [typeof(IntegrityVerified)] = "integrity-verified.v1",
        [typeof(WriteBlockImposed)] = "write-block-imposed.v1",
        [typeof(WriteBlockApplied)] = "write-block-applied.v1",
        [typeof(WriteBlockLifted)] = "write-block-lifted.v1",
        [typeof(IncidentsUpdated)] = "incidents-updated.v1",
        [typeof(NotificationsQueued)] = "notifications-queued.v1",
        [typeof(NotificationDelivered)] = "notification-delivered.v1",
        [typeof(BreakersObserved)] = "breakers-observed.v1",
        [typeof(HeartbeatState)] = "heartbeat-state.v1",
        [typeof(RunHeartbeatNow)] = "run-heartbeat-now.v1",
        [typeof(HeartbeatCompleted)] = "heartbeat-completed.v1",
        [typeof(GetHeartbeatState)] = "get-heartbeat-state.v1",
        [typeof(ReconcileWriteBlock)] = "reconcile-write-block.v1",
        [typeof(CheckStatesObserved)] = "check-states-observed.v1",
        [typeof(Heartbeat.Journal.SpoolReconciled)] = "spool-reconciled.v1",
        [typeof(Heartbeat.Journal.HeartbeatJournalSnapshot)] = "heartbeat-journal-snapshot.v1",
        [typeof(Orchestrators.RestartOrchestrators)] = "restart-orchestrators.v1",
        [typeof(Orchestrators.OrchestratorsRestarted)] = "orchestrators-restarted.v1",
        [typeof(Orchestrators.PingOrchestrator)] = "ping-orchestrator.v1",
        [typeof(Orchestrators.OrchestratorPong)] = "orchestrator-pong.v1",
        [typeof(Orchestrators.UnknownOrchestrator)] = "unknown-orchestrator.v1",
        [typeof(Orchestrators.OrchestratorRestarting)] = "orchestrator-restarting.v1",
        [typeof(Orchestrators.OrchestratorEscalation)] = "orchestrator-escalation.v1",
    };

    private static readonly IReadOnlyDictionary<string, Type> TypeByManifest = ManifestByType.ToDictionary(kv => kv.Value, kv => kv.Key);

    public ClawKeeperSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    public override int Identifier => SerializerIdentifier;

    public static IReadOnlyCollection<string> Manifests => TypeByManifest.Keys.ToList();

    public override string Manifest(object o) =>
        ManifestByType.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new ArgumentException($"{o.GetType().FullName} has no ClawKeeper manifest: add it to {nameof(ClawKeeperSerializer)}", nameof(o));

    public override byte[] ToBinary(object obj)
    {
        _ = Manifest(obj);
        return JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Options);
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!TypeByManifest.TryGetValue(manifest, out var type))
            throw new SerializationException($"unknown ClawKeeper manifest '{manifest}' (known: {string.Join(", ", TypeByManifest.Keys)})");
        return JsonSerializer.Deserialize(bytes, type, Options)
            ?? throw new SerializationException($"'{manifest}' deserialized to null");
    }
}
