using System.Globalization;
using System.Text;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>Prometheus text exposition format 0.0.4, written by hand: one family at a time, labels escaped.</summary>
public sealed class PrometheusText
{
    private readonly StringBuilder _text = new();
    private readonly HashSet<string> _families = new(StringComparer.Ordinal);

    /// <summary>Declares a family (HELP, TYPE) and writes its samples; a family is written once.</summary>
    public PrometheusText Family(string name, string type, string help, IEnumerable<(IReadOnlyList<(string Name, string Value)> Labels, double Value)> samples)
    {
        if (!_families.Add(name)) throw new InvalidOperationException($"metric family {name} written twice");
        _text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        _text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (var (labels, value) in samples)
        {
            _text.Append(name);
            if (labels.Count > 0)
            {
                _text.Append('{');
                for (var i = 0; i < labels.Count; i++)
                {
                    if (i > 0) _text.Append(',');
                    _text.Append(labels[i].Name).Append("=\"").Append(EscapeLabel(labels[i].Value)).Append('"');
                }
                _text.Append('}');
            }
            _text.Append(' ').Append(Format(value)).Append('\n');
        }
        return this;
    }

    public PrometheusText Gauge(string name, string help, double value) =>
        Family(name, "gauge", help, [(Array.Empty<(string, string)>(), value)]);

    public PrometheusText Gauge(string name, string help, IEnumerable<(IReadOnlyList<(string Name, string Value)> Labels, double Value)> samples) =>
        Family(name, "gauge", help, samples);

    public override string ToString() => _text.ToString();

    public static string EscapeLabel(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    public static string Format(double value) =>
        double.IsNaN(value) ? "NaN"
        : double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>What <c>/metrics</c> is computed from; a part that could not be read carries its error instead.</summary>
public sealed record MetricsInput(
    HeartbeatView Heartbeat,
    DateTimeOffset Now,
    IReadOnlyList<UptimeRow>? Uptime,
    IReadOnlyList<ApiResponseRow>? ApiResponse,
    TaskRates? Tasks,
    IReadOnlyList<TenantDay>? TenantDays,
    string? Visibility,
    string? PlatformError,
    Api.ApiRequestSnapshot? ApiRequests = null);

/// <summary>The protocol's metrics (ARCHITECTURE.md §1 "Tracked metrics") as Prometheus text.</summary>
public static class OpsMetrics
{
    public static readonly IReadOnlyList<CheckStatus> Statuses = Enum.GetValues<CheckStatus>();

    private static IReadOnlyList<(string, string)> L(params (string, string)[] labels) => labels;

    /// <summary>Pure: the exposition for <paramref name="input"/>.</summary>
    public static string Render(MetricsInput input)
    {
        var p = new PrometheusText();
        var heartbeat = input.Heartbeat;
        var report = heartbeat.Latest;

        p.Gauge("clawkeeper_ops_source_up", "1 when the ops surface could read the source (supervisor: the heartbeat singleton answered; platform_db: the SQL behind uptime, tasks and cost succeeded).",
        [
            (L(("source", "supervisor")), heartbeat.Supervisor.Answered ? 1 : 0),
            (L(("source", "platform_db")), input.PlatformError is null ? 1 : 0),
        ]);

        if (report is not null)
        {
            p.Gauge("clawkeeper_heartbeat_last_status", "Outcome of the latest heartbeat: 1 for its status, 0 for the other.",
                new[] { HeartbeatStatus.Pass, HeartbeatStatus.Fail }.Select(s => (L(("status", s == HeartbeatStatus.Pass ? "pass" : "fail")), report.Status == s ? 1.0 : 0.0)));
            p.Gauge("clawkeeper_heartbeat_group_status", "Status of each check group in the latest heartbeat: 1 for its status, 0 for the others.",
                report.Groups.SelectMany(g => Statuses.Select(s => (L(("group", g.Group), ("status", s.ToWire())), g.Status == s ? 1.0 : 0.0))));
            p.Gauge("clawkeeper_heartbeat_check_status", "Status of each check in the latest heartbeat: 1 for its status, 0 for the others.",
                report.AllChecks().SelectMany(x => Statuses.Select(s => (L(("group", x.Group), ("check", x.Check.Check), ("status", s.ToWire())), x.Check.Status == s ? 1.0 : 0.0))));
            p.Gauge("clawkeeper_heartbeat_check_duration_seconds", "Duration of each check in the latest heartbeat.",
                report.AllChecks().Select(x => (L(("group", x.Group), ("check", x.Check.Check)), x.Check.DurationMs / 1000.0)));
            p.Gauge("clawkeeper_heartbeat_duration_seconds", "Duration of the latest heartbeat (start to the last group's answer).", report.DurationMs / 1000.0);
            p.Gauge("clawkeeper_heartbeat_last_completed_timestamp_seconds", "When the latest heartbeat completed (Unix time).", report.CompletedAt.ToUnixTimeMilliseconds() / 1000.0);
            p.Gauge("clawkeeper_heartbeat_age_seconds", "Seconds since the latest heartbeat completed.", Math.Max(0, (input.Now - report.CompletedAt).TotalSeconds));
        }

        if (report is not null || heartbeat.Supervisor.Answered)
        {
            p.Gauge("clawkeeper_heartbeat_consecutive_failures", "Consecutive failed heartbeats (super_admin is alerted at clawkeeper.heartbeat.escalate-after-failures).", heartbeat.ConsecutiveFailures);
            p.Gauge("clawkeeper_write_block_active", "1 while writes to the financial tables are blocked by an integrity failure.", heartbeat.WriteBlock.Active ? 1 : 0);
            var incidents = heartbeat.OpenIncidents;
            p.Gauge("clawkeeper_incidents_open", "Open incidents (alerts raised and not resolved).", incidents.Count);
            p.Gauge("clawkeeper_incidents_unacknowledged", "Open incidents nobody acknowledged yet.", incidents.Count(i => !i.Acknowledged));
        }

        if (heartbeat.Supervisor.State is { } state)
            p.Family("clawkeeper_heartbeats_recorded_total", "counter", "Heartbeats the supervisor has recorded in its journal.", [(L(), state.HeartbeatsRecorded)]);

        if (input.Uptime is { } uptime)
        {
            var overall = uptime.Where(u => u.Group is null).ToList();
            var groups = uptime.Where(u => u.Group is not null).ToList();
            p.Gauge("clawkeeper_uptime_ratio", "Share of passing heartbeats over the window (NaN: no heartbeat in the window).",
                overall.Select(u => (L(("window", u.Window)), u.Ratio)));
            p.Gauge("clawkeeper_uptime_samples", "Heartbeats counted in clawkeeper_uptime_ratio.",
                overall.Select(u => (L(("window", u.Window)), (double)u.Samples)));
            p.Gauge("clawkeeper_group_uptime_ratio", "Share of heartbeats in which the group neither failed nor errored, over the window.",
                groups.Select(u => (L(("group", u.Group!), ("window", u.Window)), u.Ratio)));
            p.Gauge("clawkeeper_group_uptime_samples", "Heartbeats counted in clawkeeper_group_uptime_ratio.",
                groups.Select(u => (L(("group", u.Group!), ("window", u.Window)), (double)u.Samples)));
        }

        if (input.ApiResponse is { } api)
            p.Gauge("clawkeeper_api_response_time_seconds_avg", "Mean response time of the API's GET /health as measured by api_server_responding, over the window.",
                api.Select(a => (L(("window", a.Window)), a.AverageMs / 1000.0)));

        if (input.ApiRequests is { } served)
        {
            p.Family("clawkeeper_api_requests_total", "counter", "Requests the API hosted by this node answered since it started, by route and HTTP status.",
                served.Counts.Select(c => (L(("route", c.Route), ("status", c.Status.ToString(CultureInfo.InvariantCulture))), (double)c.Count)));
            p.Family("clawkeeper_api_request_seconds_total", "counter", "Sum of the times the API hosted by this node took to answer, by route, since it started (divided by the requests of the route: the average response time).",
                served.Durations.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => (L(("route", d.Key)), d.Value.DurationSumSeconds)));
            p.Gauge("clawkeeper_api_served_response_time_seconds_avg", "Mean time the API hosted by this node took to answer over the last 5 minutes (NaN: no request).",
                [(L(("window", "5m")), served.RecentAverageSeconds)]);
            p.Gauge("clawkeeper_api_served_requests_recent", "Requests counted in clawkeeper_api_served_response_time_seconds_avg.", [(L(("window", "5m")), (double)served.RecentSamples)]);
        }

        if (input.Tasks is { } tasks)
        {
            p.Gauge("clawkeeper_tasks_finished", "Tasks finished in the last hour by outcome.",
            [
                (L(("status", "completed"), ("window", "1h")), tasks.Completed),
                (L(("status", "failed"), ("window", "1h")), tasks.Failed),
                (L(("status", "cancelled"), ("window", "1h")), tasks.Cancelled),
            ]);
            p.Gauge("clawkeeper_task_completion_ratio", "completed / (completed + failed) tasks in the last hour (NaN: none finished).", [(L(("window", "1h")), tasks.CompletionRatio)]);
            p.Gauge("clawkeeper_task_error_ratio", "failed / (completed + failed) tasks in the last hour, as the error_rate check counts (NaN: none finished).", [(L(("window", "1h")), tasks.ErrorRatio)]);
        }

        if (input.TenantDays is { } days)
        {
            p.Gauge("clawkeeper_tenant_cost", "Agent cost per tenant per UTC day (sum of agent_runs.cost), today and the 6 days before.",
                days.Select(d => (L(("tenant_id", d.TenantId), ("day", d.Day)), (double)d.Cost)));
            p.Gauge("clawkeeper_tenant_tokens", "Tokens used per tenant per UTC day (sum of agent_runs.tokens_used), today and the 6 days before.",
                days.Select(d => (L(("tenant_id", d.TenantId), ("day", d.Day)), (double)d.Tokens)));
        }

        if (input.PlatformError is null)
            p.Gauge("clawkeeper_platform_all_tenants_visible", "1 when the ops connection sees every tenant (superuser or BYPASSRLS); 0 = per-tenant figures are incomplete.", input.Visibility is null ? 1 : 0);

        return p.ToString();
    }
}
