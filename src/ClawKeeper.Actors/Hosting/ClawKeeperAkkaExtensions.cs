using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Pattern;
using Akka.Persistence.Sql.Hosting;
using Akka.Remote.Hosting;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Serialization;
using ClawKeeper.Actors.Settings;
using LinqToDB;

namespace ClawKeeper.Actors.Hosting;

/// <summary>The <c>Configure*</c> chain of a ClawKeeper node, reused by the host and by the tests.</summary>
public static class ClawKeeperAkkaExtensions
{
    public const string ActorSystemName = "clawkeeper";

    /// <summary>The cluster role of a ClawKeeper node: it may hold the heartbeat singleton and runs a fleet.</summary>
    public const string NodeRole = "clawkeeper";

    /// <summary>Explicit, versioned serializer for every persisted event and cluster message.</summary>
    public static AkkaConfigurationBuilder WithClawKeeperSerialization(this AkkaConfigurationBuilder builder) =>
        builder.WithCustomSerializer(ClawKeeperSerializer.SerializerName, new[] { typeof(IClawKeeperMessage) },
            system => new ClawKeeperSerializer(system));

    /// <summary>Akka.Persistence.Sql on PostgreSQL when a journal connection string is set, else an embedded SQLite file.</summary>
    public static AkkaConfigurationBuilder WithClawKeeperPersistence(this AkkaConfigurationBuilder builder, JournalSettings journal)
    {
        if (journal.UsesPostgres)
            return builder.WithSqlPersistence(journal.ConnectionString, ProviderName.PostgreSQL15, autoInitialize: true);

        var path = Path.GetFullPath(journal.SqlitePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // SQLite takes one writer at a time: one query at a time from the journal.
        return builder.WithSqlPersistence($"Data Source={path};Pooling=true", ProviderName.SQLiteMS, autoInitialize: true, maxConcurrentQueries: 1);
    }

    /// <summary>Remoting + cluster; with no seed nodes configured the node joins itself.</summary>
    public static AkkaConfigurationBuilder WithClawKeeperCluster(this AkkaConfigurationBuilder builder, NodeSettings node)
    {
        builder.WithRemoting(node.Hostname, node.Port);
        var seeds = node.SeedNodes.ToArray();
        builder.WithClustering(new ClusterOptions { SeedNodes = seeds, Roles = new[] { NodeRole } });
        if (seeds.Length == 0)
            builder.AddStartup((system, _) =>
            {
                var cluster = Akka.Cluster.Cluster.Get(system);
                cluster.Join(cluster.SelfAddress);
            });
        return builder;
    }

    /// <summary>
    /// The heartbeat supervisor as a cluster singleton (proxy registered under <see cref="HeartbeatSupervisorKey"/>).
    /// Every node warms its journal up at start (<see cref="JournalWarmUp"/>), so that a node taking the
    /// singleton over recovers it in well under a second instead of paying the journal's cold start then.
    /// </summary>
    public static AkkaConfigurationBuilder WithHeartbeatSingleton(this AkkaConfigurationBuilder builder, Func<ActorSystem, HeartbeatSupervisorOptions> options) =>
        builder.WithSingleton<HeartbeatSupervisorKey>("heartbeat",
            (system, _, _) => ResilientSupervisorProps(options(system)),
            // The proxy's identification warning fires spuriously while the cluster forms; readiness is reported by the ops surface.
            new ClusterSingletonOptions { Role = NodeRole, LogSingletonIdentificationFailure = false },
            createProxyToo: true)
        .AddStartup((system, _) => system.ActorOf(JournalWarmUp.Props(), "journal-warm-up"));

    /// <summary>
    /// This node's orchestrator fleet at <c>/user/fleet</c> (registered under <see cref="OrchestratorFleetKey"/>); its
    /// escalations go to the heartbeat singleton, so call after <see cref="WithHeartbeatSingleton"/>.
    /// </summary>
    public static AkkaConfigurationBuilder WithOrchestratorFleet(this AkkaConfigurationBuilder builder, Func<ActorSystem, IActorRef, Props> fleet) =>
        builder.WithActors((system, registry) =>
            registry.Register<Orchestrators.OrchestratorFleetKey>(system.ActorOf(fleet(system, registry.Get<HeartbeatSupervisorKey>()), Orchestrators.ClusterFleetGateway.FleetActorName)));

    /// <summary>The heartbeat supervisor as a plain actor (one-shot <c>check --once</c>).</summary>
    public static AkkaConfigurationBuilder WithHeartbeatActor(this AkkaConfigurationBuilder builder, Func<ActorSystem, HeartbeatSupervisorOptions> options) =>
        builder.WithActors((system, registry) =>
            registry.Register<HeartbeatSupervisorKey>(system.ActorOf(ResilientSupervisorProps(options(system)), "heartbeat")));

    /// <summary>
    /// The supervisor no longer stops on a journal problem (its store is a child it restarts itself, see
    /// docs/never-silent.md); the backoff supervisor stays as a last guard should it ever stop (1 s .. 30 s).
    /// </summary>
    public static Props ResilientSupervisorProps(HeartbeatSupervisorOptions options) =>
        BackoffSupervisor.Props(Backoff.OnStop(
            HeartbeatSupervisor.Props(options),
            childName: "supervisor",
            minBackoff: TimeSpan.FromSeconds(1),
            maxBackoff: TimeSpan.FromSeconds(30),
            randomFactor: 0.2,
            maxNrOfRetries: -1));
}
