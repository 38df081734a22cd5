using System.Collections.Immutable;
using System.Text.Json;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// What an ops reader without the read token sees (<c>clawkeeper.ops.read-token-sha256</c>,
/// <c>expose-tenant-details</c>): the same shapes with every free text blanked. Check ids, states,
/// statuses, thresholds, durations, counts and times stay; observed values, details, alert summaries,
/// action details and the write block's reason (they carry tenant ids, task ids, error texts, audit
/// actors and source addresses) become <see cref="Hidden"/>. Pure.
/// </summary>
public static class OpsRedaction
{
    public const string Hidden = "[hidden: present the ops read token]";

    private static string Blank(string? text) => string.IsNullOrEmpty(text) ? text ?? "" : Hidden;

    public static HeartbeatReport Report(HeartbeatReport report) => report with
    {
        WriteBlock = WriteBlock(report.WriteBlock),
        Groups = report.Groups.Select(g => g with
        {
            Checks = g.Checks.Select(c => c with { Observed = Blank(c.Observed), Detail = Blank(c.Detail) }).ToList(),
        }).ToList(),
        Actions = report.Actions.Select(a => a with { Detail = Blank(a.Detail), Recheck = a.Recheck is null ? null : Blank(a.Recheck) }).ToList(),
        Alerts = report.Alerts.Select(a => a with { Summary = Blank(a.Summary) }).ToList(),
    };

    public static WriteBlockReport WriteBlock(WriteBlockReport block) => block with { Reason = block.Reason is null ? null : Hidden };

    /// <summary>The supervisor's state as the page reads it: incidents without summaries and lines, the write block without its reason.</summary>
    public static HeartbeatState State(HeartbeatState state) => state with
    {
        Latest = state.Latest is null ? null : Report(state.Latest),
        Incidents = state.Incidents.ToImmutableDictionary(kv => kv.Key, kv => kv.Value with { Summary = Blank(kv.Value.Summary), Lines = [] }),
        WriteBlock = state.WriteBlock with { Reason = state.WriteBlock.Reason is null ? null : Hidden },
    };

    public static HeartbeatView View(HeartbeatView view) => view with
    {
        Supervisor = view.Supervisor.State is { } state ? view.Supervisor with { State = State(state) } : view.Supervisor,
        Latest = view.Latest is null ? null : Report(view.Latest),
    };

    /// <summary>A report as stored in <c>agent_runs.output</c>, redacted; a row that is not a report becomes a stub with its id only.</summary>
    public static string StoredJson(string json)
    {
        try
        {
            var report = JsonSerializer.Deserialize<HeartbeatReport>(json, HeartbeatJson.Compact);
            if (report is not null) return Report(report).ToJson();
        }
        catch (JsonException)
        {
        }
        return JsonSerializer.Serialize(new { redacted = true, detail = "a stored row that is not a heartbeat report" }, HeartbeatJson.Compact);
    }
}
