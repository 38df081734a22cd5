using System.CommandLine;
using ClawKeeper.Host.Node;
using ClawKeeper.Platform;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace ClawKeeper.Host.Cli;

/// <summary><c>run</c>: a cluster node that hosts the fleet and, as singleton, the heartbeat.</summary>
public static class RunCommand
{
    public static Command Build()
    {
        var command = new Command("run", "Start a node: cluster member, hosts the fleet and (as singleton) the heartbeat. Ctrl+C stops it.");
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (config, settings) = ClawKeeperCli.LoadSettings(parse);
            // A port another process listens on: exit 2 naming the key, before anything starts.
            NodePorts.EnsureFree(config, settings);
            SerilogSetup.Configure(settings.Logging, toStandardError: false);
            Log.Information("ClawKeeper node starting: platform database {PlatformDb}, journal {Journal}, heartbeat every {Interval}",
                ConnectionStrings.Describe(settings.PlatformConnectionString),
                settings.Journal.UsesPostgres ? ConnectionStrings.Describe(settings.Journal.ConnectionString) : settings.Journal.SqlitePath,
                settings.Heartbeat.Interval);
            using var host = ClawKeeperNode.Build(config, settings, NodeMode.ClusterNode);
            await host.RunAsync(cancellationToken);
            await Log.CloseAndFlushAsync();
            return ExitCodes.Ok;
        });
        return command;
    }
}
