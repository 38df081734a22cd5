using System.CommandLine;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Configuration;
using ClawKeeper.Platform.LocalServer;

namespace ClawKeeper.Host.Cli;

/// <summary>The <c>clawkeeper</c> command line (System.CommandLine).</summary>
public static class ClawKeeperCli
{
    public static readonly Option<FileInfo?> ConfigOption = new("--config")
    {
        Description = "A HOCON file layered over hocon/*.conf (the environment still wins)",
        Recursive = true,
    };

    public static RootCommand Build()
    {
        var root = new RootCommand("ClawKeeper.Actors: the heartbeat and orchestrator fleet of the ClawKeeper platform.");
        root.Options.Add(ConfigOption);
        root.Subcommands.Add(RunCommand.Build());
        root.Subcommands.Add(DemoCommand.Build());
        root.Subcommands.Add(CheckCommand.Build());
        root.Subcommands.Add(DatabaseCommands.Build());
        root.Subcommands.Add(WritesCommands.Build());
        root.Subcommands.Add(AlertsCommands.Build());
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {error.Message}");
            Console.Error.WriteLine($"Run 'clawkeeper {string.Join(' ', parse.CommandResult.Command.Name == root.Name ? "" : parse.CommandResult.Command.Name)} --help' for usage.".Replace("  ", " "));
            return ExitCodes.UsageOrConfiguration;
        }
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception ex) when (ex is InvalidSettingsException or ConfigurationProblemException or PostgresBinariesNotFoundException)
        {
            Console.Error.WriteLine(ex.Message);
            return ExitCodes.UsageOrConfiguration;
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or System.Net.Sockets.SocketException or ClawKeeper.Platform.Schema.PlatformMigrationException)
        {
            // The message names host, port and database but never the password.
            Console.Error.WriteLine($"error: the database could not be reached or refused the operation: {ex.Message}");
            return ExitCodes.ChecksFailed;
        }
    }

    /// <summary>Loads and validates configuration; the platform database is required by commands that monitor it.</summary>
    public static (Akka.Configuration.Config Config, ClawKeeperSettings Settings) LoadSettings(
        ParseResult parse, IEnumerable<string>? overlays = null, IReadOnlyDictionary<string, string>? overrides = null, bool requirePlatformDb = true)
    {
        var config = ConfigurationLoader.Load(overlays ?? Array.Empty<string>(), parse.GetValue(ConfigOption), Environment.GetEnvironmentVariables(), overrides);
        var settings = ClawKeeperSettings.FromConfig(config);
        if (requirePlatformDb && string.IsNullOrWhiteSpace(settings.PlatformConnectionString))
            throw new InvalidSettingsException(new[]
            {
                $"clawkeeper.platform-db.connection-string: is required (set {ConfigurationLoader.PlatformDbVariable} to the Npgsql connection string of the platform database)",
            });
        return (config, settings);
    }
}
