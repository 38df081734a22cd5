using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Platform.Alerts;
using Npgsql;

namespace ClawKeeper.Host.Cli;

/// <summary><c>alerts list|ack|silence</c>: operator controls, persisted in <c>alert_controls</c> and applied by the next heartbeat.</summary>
public static class AlertsCommands
{
    public static Command Build()
    {
        var alerts = new Command("alerts", "Open incidents and the operator controls of the alerts (acknowledge, silence).");

        var list = new Command("list", "Show the open incidents of the latest heartbeat and the acknowledgements and silences in force.");
        list.SetAction(async (parse, cancellationToken) =>
        {
            var (_, settings) = ClawKeeperCli.LoadSettings(parse);
            await using var platform = NpgsqlDataSource.Create(settings.PlatformConnectionString);
            await using (var command = platform.CreateCommand(
                "select output::text from agent_runs where agent_id = 'clawkeeper' and output is not null order by started_at desc limit 1"))
            {
                if (await command.ExecuteScalarAsync(cancellationToken) is string json)
                {
                    var report = JsonSerializer.Deserialize<HeartbeatReport>(json, HeartbeatJson.Compact)!;
                    Console.Out.WriteLine($"Latest heartbeat {report.Id}: {report.Status.ToString().ToLowerInvariant()}");
                    var incidents = report.Incidents ?? Array.Empty<IncidentReport>();
                    if (incidents.Count == 0) Console.Out.WriteLine("  no open incident");
                    foreach (var incident in incidents)
                        Console.Out.WriteLine($"  {incident.DedupKey}  since {incident.Since:u}  {(incident.Acknowledged ? "acknowledged" : "unacknowledged")}{(incident.Silenced ? ", silenced" : "")}, last notified {incident.LastNotifiedAt?.ToString("u", CultureInfo.InvariantCulture) ?? "never"}");
                    foreach (var problem in report.Problems())
                        Console.Out.WriteLine($"    {problem.Group}/{problem.Check.Check} {problem.Check.Status.ToWire()}: {problem.Check.Observed}");
                }
                else
                {
                    Console.Out.WriteLine("No heartbeat has been recorded yet.");
                }
            }
            var controls = await new AlertControlStore(platform).ActiveAsync(DateTimeOffset.UtcNow, cancellationToken);
            Console.Out.WriteLine(controls.Count == 0 ? "No acknowledgement or silence in force." : "In force:");
            foreach (var control in controls)
                Console.Out.WriteLine($"  #{control.Id} {control.Kind} {control.Target}{(control.Until is { } until ? $" until {until:u}" : "")} by {control.CreatedBy}: {control.Reason}");
            return ExitCodes.Ok;
        });

        alerts.Subcommands.Add(list);
        alerts.Subcommands.Add(Ack());
        alerts.Subcommands.Add(Silence());
        return alerts;
    }

    private static Command Ack()
    {
        var target = new Argument<string>("incident") { Description = "A dedup key from 'alerts list' (e.g. check:data_integrity/audit_log_continuous:super_admin) or its subject (data_integrity/audit_log_continuous)" };
        var (reason, tokenFile, operatorName) = CommonOptions();
        var ack = new Command("ack", "Acknowledge an incident: no more reminders until it resolves (super_admin credential required).") { target, reason, tokenFile, operatorName };
        ack.SetAction((parse, cancellationToken) => AddControlAsync(parse, "ack", parse.GetValue(target)!, null, reason, tokenFile, operatorName, cancellationToken));
        return ack;
    }

    private static Command Silence()
    {
        var check = new Option<string?>("--check") { Description = "A check, e.g. data_integrity/audit_log_continuous" };
        var group = new Option<string?>("--group") { Description = "A check group, e.g. task_queue" };
        var until = new Option<DateTimeOffset?>("--until") { Description = "End of the window (ISO 8601, e.g. 2026-11-28T06:00:00Z)" };
        var duration = new Option<TimeSpan?>("--for") { Description = "Length of the window (e.g. 02:00:00 for two hours)" };
        var (reason, tokenFile, operatorName) = CommonOptions();
        var silence = new Command("silence", "Silence a check or group until an end time: alerts are kept, not sent; a resolved notice still goes out when the window ends (super_admin credential required).")
        {
            check, group, until, duration, reason, tokenFile, operatorName,
        };
        silence.SetAction(async (parse, cancellationToken) =>
        {
            var targets = new[] { parse.GetValue(check), parse.GetValue(group) }.Where(t => !string.IsNullOrWhiteSpace(t)).ToList();
            if (targets.Count != 1)
            {
                Console.Error.WriteLine("error: give exactly one of --check GROUP/CHECK or --group GROUP");
                return ExitCodes.UsageOrConfiguration;
            }
            var target = targets[0]!.Trim();
            var known = new[] { CheckGroups.SystemHealth, CheckGroups.TaskQueue, CheckGroups.DataIntegrity, CheckGroups.SecurityPosture, CheckGroups.IntegrationHealth };
            if (!known.Contains(target.Split('/')[0]))
            {
                Console.Error.WriteLine($"error: '{target}' names no check group (known: {string.Join(", ", known)})");
                return ExitCodes.UsageOrConfiguration;
            }
            var end = parse.GetValue(until) ?? (parse.GetValue(duration) is { } span ? DateTimeOffset.UtcNow + span : null);
            if (end is null || end <= DateTimeOffset.UtcNow)
            {
                Console.Error.WriteLine("error: give a window end in the future with --until TIME or --for DURATION");
                return ExitCodes.UsageOrConfiguration;
            }
            // The same bound as the ops surface's POST /alerts/silence.
            var (config, settings) = ClawKeeperCli.LoadSettings(parse);
            var maxSilence = Ops.OpsSettings.FromConfig(config, settings).MaxSilence;
            if (end - DateTimeOffset.UtcNow > maxSilence)
            {
                Console.Error.WriteLine($"error: {(parse.GetValue(until) is null ? "--for" : "--until")} must end at most {maxSilence} ahead ({Ops.OpsSettings.MaxSilenceKey}); got {end:u}");
                return ExitCodes.UsageOrConfiguration;
            }
            return await AddControlAsync(parse, "silence", target, end, reason, tokenFile, operatorName, cancellationToken);
        });
        return silence;
    }

    private static (Option<string> Reason, Option<FileInfo?> TokenFile, Option<string?> Operator) CommonOptions() =>
        (new Option<string>("--reason") { Description = "Why (recorded with the control)", Required = true },
         new Option<FileInfo?>("--token-file") { Description = $"File holding the super_admin token (default: ${SuperAdminCredential.TokenVariable})" },
         new Option<string?>("--operator") { Description = "Who (default: the OS user)" });

    private static async Task<int> AddControlAsync(ParseResult parse, string kind, string target, DateTimeOffset? until,
        Option<string> reason, Option<FileInfo?> tokenFile, Option<string?> operatorName, CancellationToken cancellationToken)
    {
        var (_, settings) = ClawKeeperCli.LoadSettings(parse);
        var why = parse.GetValue(reason)!.Trim();
        if (why.Length == 0)
        {
            Console.Error.WriteLine("error: --reason must not be empty");
            return ExitCodes.UsageOrConfiguration;
        }
        var refusal = SuperAdminCredential.Refusal(settings.Security, SuperAdminCredential.Read(parse.GetValue(tokenFile)));
        if (refusal is not null)
        {
            Console.Error.WriteLine($"refused: {refusal}");
            return ExitCodes.UsageOrConfiguration;
        }
        await using var platform = NpgsqlDataSource.Create(settings.PlatformConnectionString);
        var by = "super_admin:" + (parse.GetValue(operatorName) ?? Environment.UserName);
        var id = await new AlertControlStore(platform).AddAsync(kind, target, until, by, why, cancellationToken);
        Console.Out.WriteLine($"{kind} #{id} on {target}{(until is { } end ? $" until {end:u}" : "")} recorded by {by}; the next heartbeat applies it.");
        return ExitCodes.Ok;
    }
}
