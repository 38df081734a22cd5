using ClawKeeper.Actors.Settings;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Json;

namespace ClawKeeper.Host.Node;

/// <summary>Serilog for the whole process (Akka logs through Akka.Logger.Serilog into it).</summary>
public static class SerilogSetup
{
    /// <param name="toStandardError">true for commands whose stdout is a result (check --json): logs go to stderr.</param>
    public static void Configure(LoggingSettings settings, bool toStandardError, LogEventLevel? minimum = null)
    {
        var level = minimum ?? Enum.Parse<LogEventLevel>(settings.Level);
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Is(level)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .Enrich.FromLogContext();
        var stderrFrom = toStandardError ? LogEventLevel.Verbose : (LogEventLevel?)null;
        configuration = settings.Format == "json"
            ? configuration.WriteTo.Console(new JsonFormatter(renderMessage: true), standardErrorFromLevel: stderrFrom)
            : configuration.WriteTo.Console(
                outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}",
                standardErrorFromLevel: stderrFrom);
        Log.Logger = configuration.CreateLogger();
    }
}
