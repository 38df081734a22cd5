using System.CommandLine;
using Akka.Actor;
using Akka.Hosting;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Host.Node;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;
using Serilog.Events;

namespace ClawKeeper.Host.Cli;

/// <summary>
/// <c>check --once [--json] [--dry-run]</c>: one heartbeat now, the report on stdout.
/// Exit 0 = no check failed or errored, 1 = some did, 2 = usage or configuration error.
/// </summary>
public static class CheckCommand
{
    public static Command Build()
    {
        var once = new Option<bool>("--once") { Description = "Run exactly one heartbeat now (required: periodic heartbeats are what 'run' does)" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON (the ops report contract)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Observe only: persist nothing, write no agent_runs row, take no action" };
        var verbose = new Option<bool>("--verbose") { Description = "Log every step to stderr" };
        var full = new Option<bool>("--full") { Description = "Re-verify all data (audit chains, ledger, references) instead of only what is new since the last verified positions" };
        var command = new Command("check", "Run one heartbeat against the platform database and print the report.") { once, json, dryRun, verbose, full };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!parse.GetValue(once))
            {
                Console.Error.WriteLine("error: 'check' needs --once (periodic heartbeats are what 'clawkeeper run' does). Run 'clawkeeper check --help' for usage.");
                return ExitCodes.UsageOrConfiguration;
            }
            var (config, settings) = ClawKeeperCli.LoadSettings(parse);
            SerilogSetup.Configure(settings.Logging, toStandardError: true, minimum: parse.GetValue(verbose) ? null : LogEventLevel.Warning);
            var report = await RunOnceAsync(config, settings, parse.GetValue(dryRun), parse.GetValue(full), cancellationToken);
            Console.Out.WriteLine(parse.GetValue(json) ? report.ToJson(indented: true) : Render(report));
            await Log.CloseAndFlushAsync();
            return report.Status == HeartbeatStatus.Pass ? ExitCodes.Ok : ExitCodes.ChecksFailed;
        });
        return command;
    }

    public static async Task<HeartbeatReport> RunOnceAsync(Akka.Configuration.Config config, Actors.Settings.ClawKeeperSettings settings, bool dryRun, bool fullVerification, CancellationToken cancellationToken)
    {
        using var host = ClawKeeperNode.Build(config, settings, NodeMode.OneShot, dryRun);
        await host.StartAsync(cancellationToken);
        try
        {
            var registry = host.Services.GetRequiredService<ActorRegistry>();
            var supervisor = await registry.GetAsync<HeartbeatSupervisorKey>(cancellationToken);
            var answer = await supervisor.Ask<HeartbeatCompleted>(new RunHeartbeatNow(fullVerification),
                settings.Heartbeat.GroupTimeout + settings.DataIntegrity.Timeout + TimeSpan.FromSeconds(30), cancellationToken);
            if (!dryRun)
            {
                await WaitUntilLoggedAsync(supervisor, answer.Report.Id, cancellationToken);
                await WaitForAlertHandOffAsync(supervisor, cancellationToken);
            }
            return answer.Report;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>The run row is written right after the heartbeat; a database outage leaves it for the next run (it is journaled).</summary>
    private static async Task WaitUntilLoggedAsync(IActorRef supervisor, string heartbeatId, CancellationToken cancellationToken)
    {
        if (await WaitForStateAsync(supervisor, s => s.UnloggedRuns.All(r => r.Id != heartbeatId), TimeSpan.FromSeconds(10), cancellationToken) is null)
            Log.Warning("Heartbeat {HeartbeatId} could not be written to agent_runs yet; the next heartbeat will write it", heartbeatId);
    }

    /// <summary>
    /// A one-shot process must not exit with alerts in its outbox: wait (bounded) for the hand-off.
    /// Whatever is still pending stays journaled and goes out with the next check.
    /// </summary>
    private static async Task WaitForAlertHandOffAsync(IActorRef supervisor, CancellationToken cancellationToken)
    {
        if (await WaitForStateAsync(supervisor, s => s.Outbox.IsEmpty, TimeSpan.FromSeconds(30), cancellationToken) is null)
        {
            var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5), cancellationToken);
            Log.Warning("{Pending} alert notification(s) not handed off yet ({Channels}); they stay queued and go out with the next check",
                state.Outbox.Count, string.Join(", ", state.Outbox.Values.SelectMany(q => q.PendingChannels).Distinct()));
        }
    }

    /// <summary>Polls the supervisor's state until <paramref name="done"/> holds; null when the time ran out.</summary>
    private static async Task<HeartbeatState?> WaitForStateAsync(IActorRef supervisor, Func<HeartbeatState, bool> done, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + limit;
        do
        {
            var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5), cancellationToken);
            if (done(state)) return state;
            await Task.Delay(100, cancellationToken);
        }
        while (DateTime.UtcNow < deadline);
        return null;
    }

    public static string Render(HeartbeatReport report)
    {
        var lines = new List<string>
        {
            $"{report.Id}  {report.Status.ToString().ToUpperInvariant()}  ({report.DurationMs} ms, consecutive failures: {report.ConsecutiveFailures}{(report.DryRun ? ", dry run" : "")})",
        };
        foreach (var group in report.Groups)
        {
            lines.Add($"  {group.Group}: {group.Status.ToWire()}");
            foreach (var check in group.Checks)
            {
                lines.Add($"    {check.Status.ToWire(),-7} {check.Check,-28} {check.Observed}  [{check.Threshold}]");
                if (check.Detail.Length > 0 && check.Status != CheckStatus.Pass) lines.Add($"            {check.Detail}");
            }
        }
        if (report.WriteBlock.Active)
            lines.Add($"  WRITES BLOCKED since {report.WriteBlock.Since:u} (write block #{report.WriteBlock.BlockId?.ToString() ?? "held, not yet in the database"}): {report.WriteBlock.Reason}");
        foreach (var action in report.Actions)
            lines.Add($"  ACTION {action.Action}: {action.Outcome}");
        foreach (var alert in report.Alerts)
            lines.Add($"  ALERT {alert.Audience} via {string.Join("+", alert.Channels)}: {alert.Summary} ({alert.Delivery})");
        return string.Join(Environment.NewLine, lines);
    }
}
