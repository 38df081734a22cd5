using Akka.Hosting;
using Akka.Logger.Serilog;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Api;
using ClawKeeper.Host.Ops;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Serilog;
using AkkaConfig = Akka.Configuration.Config;

namespace ClawKeeper.Host.Node;

/// <summary>How a node hosts its heartbeat.</summary>
public enum NodeMode
{
    /// <summary>Cluster member; the heartbeat is a cluster singleton that ticks on its interval.</summary>
    ClusterNode,

    /// <summary>One heartbeat on demand (<c>check --once</c>): no cluster, no timer.</summary>
    OneShot,
}

/// <summary>Builds the generic host of a ClawKeeper node: Serilog, Akka.Hosting, the heartbeat.</summary>
public static class ClawKeeperNode
{
    public static IHost Build(AkkaConfig config, ClawKeeperSettings settings, NodeMode mode, bool dryRun = false)
    {
        // Read before anything starts, so a bad ops key stops start-up with exit 2 like every other setting.
        var ops = mode == NodeMode.ClusterNode ? OpsSettings.FromConfig(config, settings) : null;
        // The API server is hosted by cluster nodes only (check --once observes, it serves nothing).
        var api = mode == NodeMode.ClusterNode ? ApiSettings.FromConfig(config) : null;
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSerilog(dispose: false);
        builder.Services.AddSingleton(_ => NpgsqlDataSource.Create(settings.PlatformConnectionString));
        builder.Services.AddSingleton(_ => new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }));
        // The ops surface's /health/live and /health/ready run the Akka.Hosting health checks through this service.
        if (mode == NodeMode.ClusterNode)
            builder.Services.AddHealthChecks();
        if (api is { Enabled: true })
        {
            // Registered before Akka: the API listens (or the node fails to start) before the first heartbeat.
            // The API has its own bounded pool: a flood of requests cannot starve the heartbeat's and the fleet's connections.
            // Warmed up through the node's HttpClient before the first heartbeat: that heartbeat's api_server_responding finds it warm.
            builder.Services.AddSingleton(services => new ApiServer(api, ApiServer.CreateDataSource(settings.PlatformConnectionString, api),
                settings.SecurityPosture.ApplicationRole, ownsDataSource: true, warmUpClient: services.GetRequiredService<HttpClient>()));
            builder.Services.AddHostedService(services => services.GetRequiredService<ApiServer>());
        }

        builder.Services.AddAkka(ClawKeeperAkkaExtensions.ActorSystemName, (akka, services) =>
        {
            var platform = services.GetRequiredService<NpgsqlDataSource>();
            var http = services.GetRequiredService<HttpClient>();
            var apiServer = services.GetService<ApiServer>();
            akka.AddHocon(config, HoconAddMode.Prepend)
                .ConfigureLoggers(loggers =>
                {
                    loggers.ClearLoggers();
                    loggers.AddSerilogLogging();
                })
                .WithClawKeeperSerialization()
                .WithClawKeeperPersistence(settings.Journal);

            if (mode == NodeMode.ClusterNode)
            {
                akka.WithClawKeeperCluster(settings.Node)
                    .WithHeartbeatSingleton(system => HeartbeatComponents.SupervisorOptions(
                        system, settings, platform, http, HeartbeatSupervisorOptions.NodePersistenceId, scheduled: true, dryRun: false,
                        apiServer: apiServer, nodeFleets: true))
                    .WithOrchestratorFleet((system, heartbeat) => HeartbeatComponents.NodeFleetProps(system, settings, platform, heartbeat))
                    .WithClawKeeperOps(ops!, platform, new OpsWriteSettings(settings.Security, settings.DataIntegrity))
                    .WithClawKeeperHealthChecks(ops!, settings.Journal, clustered: true);
                if (apiServer is not null) akka.AddSetup(new ApiMetricsSetup(apiServer.Metrics));
            }
            else
            {
                akka.WithHeartbeatActor(system => HeartbeatComponents.SupervisorOptions(
                    system, settings, platform, http, HeartbeatSupervisorOptions.CliPersistenceId, scheduled: false, dryRun: dryRun));
            }
        });
        return builder.Build();
    }
}
