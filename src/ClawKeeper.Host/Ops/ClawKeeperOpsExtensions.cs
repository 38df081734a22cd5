using Akka;
using Akka.Actor;
using Akka.Hosting;
using Npgsql;

namespace ClawKeeper.Host.Ops;

public static class ClawKeeperOpsExtensions
{
    /// <summary>
    /// Serves the ops surface (<see cref="OpsSettings"/>) as an ASP.NET Core app on Kestrel: health,
    /// cluster members (Akka Management's Cluster HTTP routes), latest heartbeat and history,
    /// Prometheus metrics, the status page and the token-protected mutating routes. The server starts
    /// once the ActorSystem runs (a port that cannot be bound fails the host's start) and stops in
    /// CoordinatedShutdown's last phase, so it keeps answering while the node leaves the cluster.
    /// </summary>
    /// <param name="writes">The super_admin credential and integrity settings for <c>POST /writes/unblock</c> and the muting of the books; null = those refuse every attempt.</param>
    public static AkkaConfigurationBuilder WithClawKeeperOps(this AkkaConfigurationBuilder builder, OpsSettings settings, NpgsqlDataSource platform, OpsWriteSettings? writes = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(platform);

        var setup = new OpsSetup(settings, platform, writes);
        builder.AddSetup(setup);
        // A StartupTask (awaited by Akka.Hosting), not an async void action: a bind failure fails the host's start.
        builder.AddStartup(new StartupTask(async (system, _) =>
        {
            var server = await OpsServer.StartAsync(system, setup, CancellationToken.None).ConfigureAwait(false);
            CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "clawkeeper-ops-stop", async () =>
            {
                await server.StopAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(false);
                await server.DisposeAsync().ConfigureAwait(false);
                return Done.Instance;
            });
        }));
        return builder;
    }

    /// <summary>Where the ops surface of <paramref name="system"/> listens (with the port actually used), or null without <see cref="WithClawKeeperOps"/>.</summary>
    public static Uri? OpsBaseUri(this ActorSystem system)
    {
        var setup = system.Settings.Setup.Get<OpsSetup>();
        return setup.HasValue ? setup.Value.BaseUri : null;
    }
}
