using System.Globalization;
using System.Net;
using System.Text;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>What the status page shows; a part that could not be read carries its error instead.</summary>
public sealed record StatusPageInput(
    HeartbeatView Heartbeat,
    Readiness Readiness,
    ClusterView Cluster,
    DateTimeOffset Now,
    IReadOnlyList<HistoryPoint>? History,
    IReadOnlyList<UptimeRow>? Uptime,
    IReadOnlyList<ApiResponseRow>? ApiResponse,
    TaskRates? Tasks,
    IReadOnlyList<TenantDay>? TenantDays,
    string? Visibility,
    string? PlatformError);

/// <summary>
/// The status page for people at <c>/</c>: one self-contained HTML document (inline CSS, inline
/// SVG charts, a little inline JS, nothing fetched from elsewhere), rendered on the server so it
/// reads the same with scripts off. The script only adds: the "needs attention" list recomputed
/// from the embedded report, relative times, and a reload every 30 s.
/// </summary>
public static class StatusPage
{
    public const int ChartPoints = 60;

    public static string Render(StatusPageInput input)
    {
        var report = input.Heartbeat.Latest;
        var h = new StringBuilder(16 * 1024);
        h.Append("""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>ClawKeeper status</title>
            <style>
            :root { --pass:#1f7a3a; --warn:#9a6700; --fail:#b42318; --error:#7a2e9e; --skipped:#667085; --bg:#f6f7f9; --card:#fff; --line:#e4e7ec; --text:#1d2939; --muted:#667085; }
            * { box-sizing: border-box; }
            body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--text); }
            header { display:flex; flex-wrap:wrap; gap:12px; align-items:center; padding:16px 24px; background:#101828; color:#fff; }
            header h1 { font-size:20px; margin:0 12px 0 0; }
            header .meta { color:#d0d5dd; }
            main { max-width:1200px; margin:0 auto; padding:16px 24px 48px; }
            section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; margin:16px 0; }
            h2 { font-size:16px; margin:4px 0 10px; }
            h3 { font-size:14px; margin:12px 0 6px; }
            table { border-collapse:collapse; width:100%; }
            th, td { text-align:left; padding:6px 8px; border-top:1px solid var(--line); vertical-align:top; }
            th { color:var(--muted); font-weight:600; border-top:none; }
            td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
            .badge { display:inline-block; padding:2px 8px; border-radius:999px; font-weight:700; font-size:12px; color:#fff; text-transform:uppercase; letter-spacing:.03em; }
            .s-pass { background:var(--pass); } .s-warn { background:var(--warn); } .s-fail { background:var(--fail); } .s-error { background:var(--error); } .s-skipped, .s-none { background:var(--skipped); }
            .s-flapping { background:#c4320a; }
            .state { font-weight:600; white-space:nowrap; } .state-soft { color:var(--warn); } .state-hard { color:var(--fail); }
            .retry { display:inline-block; padding:2px 8px; border-radius:999px; background:#344054; color:#fff; font-size:12px; }
            .banner { background:var(--fail); color:#fff; padding:12px 16px; border-radius:8px; margin:16px 0; font-weight:600; }
            .banner small { display:block; font-weight:400; opacity:.9; }
            .muted { color:var(--muted); }
            .unavailable { color:var(--fail); }
            .detail { white-space:pre-wrap; word-break:break-word; max-width:520px; }
            ul.problems { margin:0; padding-left:20px; }
            ul.problems li { margin:2px 0; }
            .grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(340px,1fr)); gap:16px; }
            svg { width:100%; height:auto; background:#fcfcfd; border:1px solid var(--line); border-radius:6px; }
            footer { color:var(--muted); font-size:12px; margin-top:24px; }
            a { color:#175cd3; }
            </style>
            </head>
            <body>

            """);

        // Header: overall status of the latest heartbeat.
        h.Append("<header><h1>ClawKeeper</h1>");
        if (report is null)
            h.Append("<span class=\"badge s-none\" id=\"overall\">no heartbeat yet</span>");
        else
            h.Append($"<span class=\"badge {StatusClass(report.Status)}\" id=\"overall\">{(report.Status == HeartbeatStatus.Pass ? "pass" : "fail")}</span>")
             .Append($"<span class=\"meta\">{E(report.Id)} · completed {Time(report.CompletedAt)} · {report.DurationMs} ms · {report.ConsecutiveFailures} consecutive failure(s)</span>");
        if (report?.Rechecked is { } rechecked)
            h.Append($"<span class=\"retry\" id=\"retry-round\" title=\"only the checks in soft state ran; the others are carried from the previous heartbeat\">retry round: re-checked {E(string.Join(", ", rechecked))}</span>");
        h.Append($"<span class=\"badge {(input.Readiness.Ready ? "s-pass" : "s-fail")}\" id=\"readiness\">{(input.Readiness.Ready ? "node ready" : "node not ready")}</span>");
        h.Append("</header>\n<main>\n");

        // Write-block banner.
        var block = input.Heartbeat.WriteBlock;
        if (block.Active)
        {
            h.Append("<div class=\"banner\" id=\"write-block\" role=\"alert\">WRITES BLOCKED");
            if (block.BlockId is { } id) h.Append($" (write block #{id})");
            h.Append(": ").Append(E(block.Reason ?? "an integrity check failed"));
            h.Append("<small>Writes to the financial tables are refused by the database until a super_admin lifts the block (<code>clawkeeper writes unblock --reason ...</code>).");
            if (block.Since is { } since) h.Append(" Since ").Append(Time(since)).Append('.');
            h.Append("</small></div>\n");
        }

        if (input.Heartbeat.Supervisor.Error is { } supervisorError)
        {
            h.Append($"<section><p class=\"unavailable\">Heartbeat supervisor: {E(supervisorError)}.");
            if (input.Heartbeat.LatestSource == "agent_runs") h.Append(" The latest heartbeat below is the newest row of agent_runs.");
            h.Append("</p></section>\n");
        }
        if (input.Heartbeat.LatestError is { } latestError)
            h.Append($"<section><p class=\"unavailable\">{E(latestError)}</p></section>\n");

        // Needs attention: rendered here, recomputed by the script from the embedded report.
        h.Append("<section id=\"attention\"><h2>Needs attention</h2><ul class=\"problems\" id=\"problems\" data-rendered=\"server\">");
        var problems = report?.AllChecks().Where(x => x.Check.Status is CheckStatus.Fail or CheckStatus.Error or CheckStatus.Warn).ToList() ?? [];
        if (report is null) h.Append("<li class=\"muted\">no heartbeat has completed yet</li>");
        else if (problems.Count == 0) h.Append("<li class=\"muted\">nothing: every check passed or was skipped</li>");
        foreach (var (group, check) in problems)
            h.Append($"<li data-check=\"{E(check.Check)}\"><span class=\"badge {StatusClass(check.Status)}\">{check.Status.ToWire()}</span>{StateText(check)}{FlappingBadge(check)} {E(group)} / <b>{E(check.Check)}</b>: {E(check.Observed)} <span class=\"muted\">(threshold {E(check.Threshold)})</span></li>");
        h.Append("</ul></section>\n");

        // Groups and checks.
        h.Append("<section id=\"checks\"><h2>Latest heartbeat</h2>");
        if (report is null)
            h.Append("<p class=\"muted\">No heartbeat has completed yet.</p>");
        else
            foreach (var group in report.Groups)
            {
                h.Append($"<h3 id=\"group-{E(group.Group)}\"><span class=\"badge {StatusClass(group.Status)}\">{group.Status.ToWire()}</span> {E(group.Group)}</h3>");
                h.Append("<table><thead><tr><th>check</th><th>status</th><th>observed</th><th>threshold</th><th>detail</th><th class=\"num\">ms</th></tr></thead><tbody>");
                foreach (var check in group.Checks)
                    h.Append($"<tr data-check=\"{E(check.Check)}\" data-status=\"{check.Status.ToWire()}\"{DataAttribute("state", check.State)}{DataAttribute("attempt", check.Attempt)}{(check.Flapping == true ? " data-flapping=\"true\"" : "")}><td><b>{E(check.Check)}</b>{Carried(check)}</td><td class=\"status\"><span class=\"badge {StatusClass(check.Status)}\">{check.Status.ToWire()}</span>{StateText(check)}{FlappingBadge(check)}</td><td>{E(check.Observed)}</td><td>{E(check.Threshold)}</td><td class=\"detail\">{E(check.Detail)}</td><td class=\"num\">{check.DurationMs}</td></tr>");
                h.Append("</tbody></table>");
            }
        if (report is { Actions.Count: > 0 })
        {
            h.Append("<h3>Actions</h3><table id=\"actions\"><thead><tr><th>action</th><th>outcome</th><th>re-check</th><th>detail</th></tr></thead><tbody>");
            foreach (var action in report.Actions)
                h.Append($"<tr data-action=\"{E(action.Action)}\"><td><b>{E(action.Action)}</b></td><td class=\"outcome\">{E(action.Outcome)}</td><td class=\"recheck\">{(action.Recheck is { } recheck ? E(recheck) : "<span class=\"muted\">none</span>")}</td><td class=\"detail\">{E(action.Detail)}</td></tr>");
            h.Append("</tbody></table>");
        }
        h.Append("</section>\n");

        // Open incidents.
        var incidents = input.Heartbeat.OpenIncidents;
        h.Append("<section id=\"incidents\"><h2>Open incidents</h2>");
        if (report is null && !input.Heartbeat.Supervisor.Answered)
            h.Append("<p class=\"unavailable\">unknown: neither the supervisor nor agent_runs could be read</p>");
        else if (incidents.Count == 0)
            h.Append("<p class=\"muted\">none</p>");
        else
        {
            h.Append("<table><thead><tr><th>incident</th><th>audience</th><th>severity</th><th>summary</th><th>since</th><th>state</th></tr></thead><tbody>");
            foreach (var incident in incidents)
                h.Append($"<tr><td>{E(incident.DedupKey)}</td><td>{E(incident.Audience)}</td><td>{E(incident.Severity ?? "")}</td><td class=\"detail\">{E(incident.Summary ?? "")}</td><td>{Time(incident.Since)}</td><td>{(incident.Acknowledged ? "acknowledged" : "unacknowledged")}{(incident.Silenced ? ", silenced" : "")}</td></tr>");
            h.Append("</tbody></table>");
        }
        h.Append("</section>\n");

        // Uptime and history charts.
        h.Append("<section id=\"uptime\"><h2>Uptime and response time</h2>");
        if (input.PlatformError is { } platformError)
            h.Append($"<p class=\"unavailable\">unavailable: {E(platformError)}</p>");
        if (input.Uptime is { } uptime) AppendUptime(h, uptime, input.ApiResponse ?? []);
        if (input.History is { } history)
        {
            h.Append("<div class=\"grid\">");
            AppendChart(h, "heartbeat-chart", "Heartbeat duration (ms), last " + history.Count + " heartbeats; red = failed",
                history.Select(p => ((double)p.DurationMs, p.Passed, $"{p.Id}: {(p.Passed ? "pass" : "fail")}, {p.DurationMs} ms")).ToList());
            var api = history.Where(p => p.ApiResponseMs is not null).ToList();
            AppendChart(h, "api-chart", "API response time (ms) as api_server_responding measured it",
                api.Select(p => ((double)p.ApiResponseMs!.Value, true, $"{p.Id}: {p.ApiResponseMs} ms")).ToList());
            h.Append("</div>");
        }
        h.Append("</section>\n");

        // Tasks and tenants.
        h.Append("<section id=\"tasks\"><h2>Tasks in the last hour</h2>");
        if (input.Tasks is { } tasks)
            h.Append("<table><thead><tr><th class=\"num\">completed</th><th class=\"num\">failed</th><th class=\"num\">cancelled</th><th class=\"num\">completion rate</th><th class=\"num\">error rate</th></tr></thead><tbody>")
             .Append($"<tr><td class=\"num\">{tasks.Completed}</td><td class=\"num\">{tasks.Failed}</td><td class=\"num\">{tasks.Cancelled}</td><td class=\"num\">{Percent(tasks.CompletionRatio)}</td><td class=\"num\">{Percent(tasks.ErrorRatio)}</td></tr></tbody></table>");
        else
            h.Append("<p class=\"unavailable\">unavailable</p>");
        h.Append("</section>\n");

        h.Append("<section id=\"tenants\"><h2>Cost and tokens per tenant per day (UTC, last 7 days)</h2>");
        if (input.Visibility is { } visibility)
            h.Append($"<p class=\"unavailable\">Incomplete: {E(visibility)}</p>");
        if (input.TenantDays is { } days)
        {
            if (days.Count == 0) h.Append("<p class=\"muted\">no agent runs in the last 7 days</p>");
            else
            {
                h.Append("<table><thead><tr><th>tenant</th><th>day</th><th class=\"num\">cost</th><th class=\"num\">tokens</th><th class=\"num\">runs</th></tr></thead><tbody>");
                foreach (var day in days)
                    h.Append($"<tr><td>{E(day.TenantId)}</td><td>{E(day.Day)}</td><td class=\"num\">{day.Cost.ToString("0.00####", CultureInfo.InvariantCulture)}</td><td class=\"num\">{day.Tokens.ToString("#,0", CultureInfo.InvariantCulture)}</td><td class=\"num\">{day.Runs}</td></tr>");
                h.Append("</tbody></table>");
            }
        }
        else
            h.Append("<p class=\"unavailable\">unavailable</p>");
        h.Append("</section>\n");

        // Node: readiness and cluster.
        h.Append("<section id=\"node\"><h2>This node</h2><table><thead><tr><th>readiness condition</th><th>ok</th><th>detail</th></tr></thead><tbody>");
        foreach (var condition in input.Readiness.Conditions)
            h.Append($"<tr><td>{E(condition.Condition)}</td><td><span class=\"badge {(condition.Ok ? "s-pass" : "s-fail")}\">{(condition.Ok ? "yes" : "no")}</span></td><td>{E(condition.Detail)}</td></tr>");
        h.Append("</tbody></table>");
        if (input.Cluster.Clustered)
        {
            h.Append("<h3>Cluster members</h3><table><thead><tr><th>address</th><th>status</th><th>roles</th><th>reachable</th></tr></thead><tbody>");
            foreach (var member in input.Cluster.Members)
                h.Append($"<tr><td>{E(member.Address)}{(member.Self ? " <span class=\"muted\">(this node)</span>" : "")}{(member.Leader ? " <span class=\"muted\">(leader)</span>" : "")}</td><td>{E(member.Status)}</td><td>{E(string.Join(", ", member.Roles))}</td><td>{(member.Reachable ? "yes" : "no")}</td></tr>");
            h.Append("</tbody></table>");
        }
        else
            h.Append("<p class=\"muted\">Not clustered.</p>");
        h.Append("</section>\n");

        h.Append($"<footer>Rendered {Time(input.Now)}. Machine-readable: <a href=\"/heartbeat/latest\">/heartbeat/latest</a> · <a href=\"/heartbeat/history?limit=20\">/heartbeat/history</a> · <a href=\"/metrics\">/metrics</a> · <a href=\"/health/ready\">/health/ready</a> · <a href=\"/cluster/members\">/cluster/members</a></footer>\n");
        h.Append("</main>\n");

        // The latest report as data for the script. '<' is escaped so the JSON cannot close the element.
        h.Append("<script type=\"application/json\" id=\"latest-report\">")
         .Append((report?.ToJson() ?? "null").Replace("<", "\\u003c", StringComparison.Ordinal))
         .Append("</script>\n");
        h.Append(Script);
        h.Append("</body>\n</html>\n");
        return h.ToString();
    }

    private const string Script = """
        <script>
        (function () {
          "use strict";
          var report = JSON.parse(document.getElementById("latest-report").textContent);
          var list = document.getElementById("problems");
          function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
          if (report && list) {
            var rank = { fail: 0, error: 1, warn: 2 };
            var items = [];
            (report.groups || []).forEach(function (g) {
              (g.checks || []).forEach(function (c) {
                if (c.status in rank) items.push({ group: g.group, check: c });
              });
            });
            items.sort(function (a, b) { return rank[a.check.status] - rank[b.check.status]; });
            while (list.firstChild) list.removeChild(list.firstChild);
            if (items.length === 0) list.appendChild(el("li", "muted", "nothing: every check passed or was skipped"));
            items.forEach(function (item) {
              var li = el("li");
              li.setAttribute("data-check", item.check.check);
              li.appendChild(el("span", "badge s-" + item.check.status, item.check.status));
              if (item.check.state && (item.check.status === "fail" || item.check.status === "error")) {
                var state = el("span", "state state-" + item.check.state, " \u00b7 " + item.check.state + (item.check.attempt ? " " + item.check.attempt : ""));
                state.setAttribute("data-state", item.check.state);
                li.appendChild(state);
              }
              if (item.check.flapping) {
                li.appendChild(document.createTextNode(" "));
                li.appendChild(el("span", "badge s-flapping", "flapping"));
              }
              li.appendChild(document.createTextNode(" " + item.group + " / "));
              li.appendChild(el("b", null, item.check.check));
              li.appendChild(document.createTextNode(": " + item.check.observed + (item.check.detail ? " \u2014 " + item.check.detail : "")));
              if (item.check.carriedFrom) li.appendChild(el("span", "muted", " (carried from " + item.check.carriedFrom + ")"));
              list.appendChild(li);
            });
            list.setAttribute("data-rendered", "js");
          }
          var now = Date.now();
          Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (t) {
            var at = Date.parse(t.getAttribute("datetime"));
            if (isNaN(at)) return;
            var s = Math.max(0, Math.round((now - at) / 1000));
            var ago = s < 120 ? s + " s ago" : s < 7200 ? Math.round(s / 60) + " min ago" : s < 172800 ? Math.round(s / 3600) + " h ago" : Math.round(s / 86400) + " d ago";
            t.title = t.textContent;
            t.textContent = ago;
          });
          setTimeout(function () { if (!document.hidden) location.reload(); }, 30000);
        })();
        </script>

        """;

    private static void AppendUptime(StringBuilder h, IReadOnlyList<UptimeRow> uptime, IReadOnlyList<ApiResponseRow> api)
    {
        var windows = OpsQueries.UptimeWindows.Select(w => w.Name).ToList();
        var groups = uptime.Select(u => u.Group).Distinct().OrderBy(g => g is null ? 0 : 1).ThenBy(g => g, StringComparer.Ordinal).ToList();
        h.Append("<table id=\"uptime-table\"><thead><tr><th></th>");
        foreach (var window in windows) h.Append($"<th class=\"num\">{window}</th>");
        h.Append("</tr></thead><tbody>");
        foreach (var group in groups)
        {
            h.Append($"<tr><td>{(group is null ? "<b>overall</b>" : E(group))}</td>");
            foreach (var window in windows)
            {
                var row = uptime.FirstOrDefault(u => u.Group == group && u.Window == window);
                h.Append(row is null || row.Samples == 0
                    ? "<td class=\"num muted\">no data</td>"
                    : $"<td class=\"num\" title=\"{row.Passed} of {row.Samples} heartbeats\">{Percent(row.Ratio)}</td>");
            }
            h.Append("</tr>");
        }
        h.Append("<tr><td>API response time (mean)</td>");
        foreach (var window in windows)
        {
            var row = api.FirstOrDefault(a => a.Window == window);
            h.Append(row is null ? "<td class=\"num muted\">no data</td>" : $"<td class=\"num\" title=\"{row.Samples} measurements\">{row.AverageMs.ToString("0.#", CultureInfo.InvariantCulture)} ms</td>");
        }
        h.Append("</tr></tbody></table>");
    }

    /// <summary>An inline SVG bar chart, oldest left; each bar has its tooltip.</summary>
    private static void AppendChart(StringBuilder h, string id, string title, IReadOnlyList<(double Value, bool Ok, string Label)> points)
    {
        const int width = 600, height = 160, pad = 24;
        h.Append($"<figure style=\"margin:0\"><figcaption class=\"muted\">{E(title)}</figcaption>");
        if (points.Count == 0)
        {
            h.Append($"<p class=\"muted\" id=\"{id}\">no data yet</p></figure>");
            return;
        }
        var shown = points.Skip(Math.Max(0, points.Count - ChartPoints)).ToList();
        var max = Math.Max(1, shown.Max(p => p.Value));
        var slot = (double)(width - 2 * pad) / shown.Count;
        var bar = Math.Max(1, slot * 0.7);
        h.Append($"<svg id=\"{id}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{E(title)}\" xmlns=\"http://www.w3.org/2000/svg\">");
        h.Append($"<line x1=\"{pad}\" y1=\"{height - pad}\" x2=\"{width - pad}\" y2=\"{height - pad}\" stroke=\"#d0d5dd\"/>");
        h.Append($"<text x=\"{pad}\" y=\"14\" font-size=\"11\" fill=\"#667085\">max {max.ToString("0", CultureInfo.InvariantCulture)}</text>");
        for (var i = 0; i < shown.Count; i++)
        {
            var (value, ok, label) = shown[i];
            var barHeight = Math.Max(1, value / max * (height - 2 * pad));
            var x = pad + i * slot + (slot - bar) / 2;
            var y = height - pad - barHeight;
            h.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x:0.##}\" y=\"{y:0.##}\" width=\"{bar:0.##}\" height=\"{barHeight:0.##}\" fill=\"{(ok ? "#1f7a3a" : "#b42318")}\"><title>{E(label)}</title></rect>");
        }
        h.Append("</svg></figure>");
    }

    private static string StatusClass(CheckStatus status) => "s-" + status.ToWire();

    /// <summary>" · soft 2/3" for a problem (soft: being re-checked; hard: confirmed); nothing for a check that is fine.</summary>
    private static string StateText(CheckResult check) =>
        check.State is not { } state || !check.Status.IsProblem() ? ""
            : $"<span class=\"state state-{E(state)}\" data-state=\"{E(state)}\"> · {E(state)}{(check.Attempt is { } attempt ? " " + E(attempt) : "")}</span>";

    private static string FlappingBadge(CheckResult check) =>
        check.Flapping == true ? " <span class=\"badge s-flapping\" title=\"keeps flipping between fine and failing: its alerts are held back\">flapping</span>" : "";

    private static string Carried(CheckResult check) =>
        check.CarriedFrom is { } from ? $"<br><span class=\"muted carried\">carried from {E(from)}</span>" : "";

    private static string DataAttribute(string name, string? value) => value is null ? "" : $" data-{name}=\"{E(value)}\"";

    private static string StatusClass(HeartbeatStatus status) => status == HeartbeatStatus.Pass ? "s-pass" : "s-fail";

    private static string Time(DateTimeOffset at)
    {
        var iso = at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        return $"<time datetime=\"{iso}\">{iso}</time>";
    }

    private static string Percent(double ratio) =>
        double.IsNaN(ratio) ? "n/a" : (ratio * 100).ToString("0.##", CultureInfo.InvariantCulture) + " %";

    private static string E(string value) => WebUtility.HtmlEncode(value);
}
