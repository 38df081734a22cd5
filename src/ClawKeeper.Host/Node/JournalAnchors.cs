using Akka.Actor;
using Akka.Hosting;
using Akka.Logger.Serilog;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Actors.Settings;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using AkkaConfig = Akka.Configuration.Config;

namespace ClawKeeper.Host.Node;

/// <summary>
/// The verified integrity positions as the journal holds them, for a process that is not the heartbeat
/// (<c>writes unblock</c> from the CLI): a local actor system with the node's serializer and journal, no
/// cluster, that recovers the supervisors' state read-only (<see cref="IntegrityAnchors"/>).
/// </summary>
public static class JournalAnchors
{
    public static async Task<IntegrityWatermarks> ReadAsync(AkkaConfig config, ClawKeeperSettings settings, CancellationToken cancellationToken)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddAkka(ClawKeeperAkkaExtensions.ActorSystemName, (akka, _) =>
            akka.AddHocon(config, HoconAddMode.Prepend)
                .ConfigureLoggers(loggers =>
                {
                    loggers.LogLevel = Akka.Event.LogLevel.WarningLevel;
                    loggers.ClearLoggers();
                    loggers.AddSerilogLogging();
                })
                .WithClawKeeperSerialization()
                .WithClawKeeperPersistence(settings.Journal));
        using var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var system = host.Services.GetRequiredService<ActorSystem>();
            return await IntegrityAnchors.ReadAsync(system, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }
}
